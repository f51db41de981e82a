package ascio

import (
	"bytes"
	"encoding/xml"
	"fmt"
)

// writer appends elements to a payload. Names carry their prefix; the
// prefixes are declared on the payload's root by Client.call.
type writer struct{ b bytes.Buffer }

func (w *writer) open(name string)  { w.b.WriteString("<" + name + ">") }
func (w *writer) close(name string) { w.b.WriteString("</" + name + ">") }

// text writes one element with escaped text. EscapeText also replaces
// characters XML cannot carry, so no input breaks the envelope.
func (w *writer) text(name, value string) {
	w.open(name)
	xml.EscapeText(&w.b, []byte(value))
	w.close(name)
}

func (w *writer) Bytes() []byte { return w.b.Bytes() }

// wireResult is AbstractResponse as decoded. encoding/xml matches local
// names in any namespace, so the answer's prefixes do not matter.
type wireResult struct {
	Code    *int     `xml:"ResultCode"` // nil: left out, which WCF never does
	Message string   `xml:"ResultMessage"`
	Errors  []string `xml:"Errors>string"`
}

type wireQueueMessage struct {
	Nil          bool        `xml:"nil,attr"`
	ErrorCodes   []ErrorCode `xml:"ErrorCodes>ErrorCode"`
	ID           int         `xml:"Id"`
	Text         string      `xml:"Message"`
	MessageType  string      `xml:"MessageType"`
	ObjectHandle string      `xml:"ObjectHandle"`
	ObjectName   string      `xml:"ObjectName"`
	ObjectType   string      `xml:"ObjectType"`
	OrderID      string      `xml:"OrderId"`
	OrderStatus  string      `xml:"OrderStatus"`
	OrderType    string      `xml:"OrderType"`
}

// null reports a Message element that is missing or i:nil.
func (m *wireQueueMessage) null() bool { return m == nil || m.Nil }

// message copies the queue message with every text capped. At most
// maxErrors ErrorCodes are kept.
func (m *wireQueueMessage) message() QueueMessage {
	q := QueueMessage{
		ID: m.ID, Text: capped(m.Text), MessageType: capped(m.MessageType),
		ObjectHandle: capped(m.ObjectHandle), ObjectName: capped(m.ObjectName), ObjectType: capped(m.ObjectType),
		OrderID: capped(m.OrderID), OrderStatus: capped(m.OrderStatus), OrderType: capped(m.OrderType),
	}
	for i, e := range m.ErrorCodes {
		if i == maxErrors {
			q.ErrorCodes = append(q.ErrorCodes, ErrorCode{Message: fmt.Sprintf("…[cut: %d of %d error codes kept]", maxErrors, len(m.ErrorCodes))})
			break
		}
		q.ErrorCodes = append(q.ErrorCodes, ErrorCode{Code: capped(e.Code), Message: capped(e.Message)})
	}
	return q
}

// wireTime is a nillable xs:dateTime, told apart from one left out.
type wireTime struct {
	Nil   bool   `xml:"nil,attr"`
	Value string `xml:",chardata"`
}

type wireContact struct {
	Handle      string `xml:"Handle"`
	FirstName   string `xml:"FirstName"`
	LastName    string `xml:"LastName"`
	OrgName     string `xml:"OrgName"`
	Email       string `xml:"Email"`
	CountryCode string `xml:"CountryCode"`
}

func (c wireContact) contact() Contact {
	return Contact{Handle: capped(c.Handle), FirstName: capped(c.FirstName), LastName: capped(c.LastName),
		OrgName: capped(c.OrgName), Email: capped(c.Email), CountryCode: capped(c.CountryCode)}
}

// wireDomain is a DomainInfo as decoded.
type wireDomain struct {
	Nil     bool        `xml:"nil,attr"`
	Name    string      `xml:"DomainName"`
	Handle  string      `xml:"DomainHandle"`
	Status  string      `xml:"Status"`
	Created string      `xml:"Created"`
	Expires *wireTime   `xml:"Expires"`
	Owner   wireContact `xml:"Owner"`
}
