package ascio

import (
	"strings"
	"time"
)

// MessageType is Ascio's MessageType enumeration, as far as errpd uses it.
type MessageType string

const (
	MessageToPartner MessageType = "MessageToPartner" // what PollQueue drains
	ExpiryReminder1  MessageType = "ExpiryReminder1"  // ERRP reminder 1, about a month before expiry
	ExpiryReminder2  MessageType = "ExpiryReminder2"  // ERRP reminder 2, about a week before expiry
	ExpiryReminder3  MessageType = "ExpiryReminder3"  // the notice within five days after expiry
)

// Attachment is a file attached to an uploaded message.
type Attachment struct {
	FileName string
	Content  []byte
}

// Message is what UploadMessage carries: a mail the partner sent.
type Message struct {
	Attachments []Attachment
	Body        string
	Created     time.Time
	From        string
	Subject     string
	To          string
	Type        MessageType
}

// ErrorCode is one entry of a queue message's ErrorCodes.
type ErrorCode struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

// QueueMessage is one message of Ascio's queue. Order types and statuses
// are kept as Ascio spells them (v3 AutoRenew, or v2 Autorenew_Domain from
// older accounts); the reader normalises them.
type QueueMessage struct {
	ID           int
	Text         string // the message's Message element
	MessageType  string
	ObjectHandle string
	ObjectName   string
	ObjectType   string
	OrderID      string
	OrderStatus  string
	OrderType    string
	ErrorCodes   []ErrorCode
}

// Contact is the part of an Ascio contact or registrant errpd uses.
type Contact struct {
	Handle      string
	FirstName   string
	LastName    string
	OrgName     string
	Email       string
	CountryCode string
}

// Name is the contact's name for a salutation: first and last name, or
// the organisation when there is none.
func (c Contact) Name() string {
	if n := strings.TrimSpace(c.FirstName + " " + c.LastName); n != "" {
		return n
	}
	return strings.TrimSpace(c.OrgName)
}

// Order is what GetOrder tells about a domain order.
type Order struct {
	ID           string
	Status       string
	Type         string
	Created      time.Time
	DomainName   string // from the DomainOrderRequest, empty for other objects
	DomainHandle string
	Owner        Contact
}

// Domain is what GetDomain tells about a domain.
type Domain struct {
	Name    string
	Handle  string
	Status  string
	Created time.Time
	Expires time.Time // zero when Ascio sent none
	Owner   Contact
}

// ParseTime reads an xs:dateTime as WCF writes it. A value without a zone
// is taken as UTC, which is how Ascio's examples write expiry dates.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	return time.ParseInLocation("2006-01-02T15:04:05.999999999", s, time.UTC)
}
