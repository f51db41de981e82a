package ascio_test

import (
	"encoding/xml"
	"strings"
	"testing"

	"github.com/errpd/errpd/ascio/wsdl"
)

// The client requires, on a success, elements the XSD marks minOccurs=0.
// That is sound only because WCF writes every data member (nil ones as
// i:nil) unless it is marked EmitDefaultValue=false; this holds the list
// in client.go (and docs/ascio.md) to the schema.
func TestRequiredElementsAreAlwaysWritten(t *testing.T) {
	t.Parallel()
	type element struct {
		Name       string `xml:"name,attr"`
		Annotation struct {
			Inner string `xml:",innerxml"`
		} `xml:"annotation"`
	}
	var schema struct {
		Types []struct {
			Name     string    `xml:"name,attr"`
			Sequence []element `xml:"sequence>element"`
			Extended []element `xml:"complexContent>extension>sequence>element"`
		} `xml:"complexType"`
	}
	b, err := wsdl.Files.ReadFile(wsdl.HeaderSchema)
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	omitted := map[string]bool{} // type.element → may be left out
	found := map[string]bool{}
	for _, ty := range schema.Types {
		for _, e := range append(ty.Sequence, ty.Extended...) {
			key := ty.Name + "." + e.Name
			found[key] = true
			omitted[key] = strings.Contains(e.Annotation.Inner, `EmitDefaultValue="false"`)
		}
	}
	// Not vacuous: the schema does mark some members, and they are seen.
	if !omitted["OrderInfo.LastUpdated"] {
		t.Fatalf("OrderInfo.LastUpdated is not seen as EmitDefaultValue=false; the test reads the schema wrong")
	}
	for _, key := range []string{
		"AbstractResponse.ResultCode",
		"UploadMessageResponse.MessageId",
		"GetMessagesResponse.Messages", "Message.Created", "Message.Type",
		"PollQueueResponse.TotalCount", "PollQueueResponse.Message",
		"GetQueueMessageResponse.Message", "QueueMessage.Id",
		"GetOrderResponse.OrderInfo", "OrderInfo.OrderId",
		"GetDomainResponse.DomainInfo", "DomainInfo.DomainName", "DomainInfo.Expires",
		"GetDomainsResponse.TotalCount", "GetDomainsResponse.DomainInfos",
	} {
		if !found[key] {
			t.Errorf("%s is not in the schema", key)
		} else if omitted[key] {
			t.Errorf("%s is EmitDefaultValue=false: WCF may leave it out, the client must not require it", key)
		}
	}
}
