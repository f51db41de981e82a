package ascio

import (
	"bytes"
	"encoding/xml"
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
	Code    int      `xml:"ResultCode"`
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

// absent reports a Message element that is missing or i:nil.
func (m *wireQueueMessage) absent() bool { return m == nil || m.Nil || m.ID == 0 }

func (m *wireQueueMessage) message() QueueMessage {
	return QueueMessage{
		ID: m.ID, Text: m.Text, MessageType: m.MessageType,
		ObjectHandle: m.ObjectHandle, ObjectName: m.ObjectName, ObjectType: m.ObjectType,
		OrderID: m.OrderID, OrderStatus: m.OrderStatus, OrderType: m.OrderType,
		ErrorCodes: m.ErrorCodes,
	}
}

type wireContact struct {
	Handle      string `xml:"Handle"`
	FirstName   string `xml:"FirstName"`
	LastName    string `xml:"LastName"`
	OrgName     string `xml:"OrgName"`
	Email       string `xml:"Email"`
	CountryCode string `xml:"CountryCode"`
}

func (c wireContact) contact() Contact { return Contact(c) }
