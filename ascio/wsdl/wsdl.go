// Package wsdl ships Ascio's AWS v3 service description with errpd: the WSDL
// as Ascio publishes it (the OTE copy; the live one differs only in
// soap:address) and the four schemas inlined in it, extracted so that
// xmllint can validate a SOAP body or header payload on its own.
//
// errpd never fetches the WSDL at run time. The files are verbatim copies of
// shared/reference/ascio (rendermani/ascio-framework, config/, commit
// fb1bbb33ba1cfe3c9854e912db3b29400a56a60d); the XSDs differ from the WSDL's
// inline schemas only in added namespace declarations and import locations.
package wsdl

import "embed"

// Files holds the WSDL and the schemas, at the root of the file system.
//
//go:embed aws-v3-demo.wsdl AscioService.xsd ascio-2013-02.xsd Serialization.xsd Arrays.xsd
var Files embed.FS

// Names of the files in Files.
const (
	WSDL         = "aws-v3-demo.wsdl"
	BodySchema   = "AscioService.xsd"  // validates a SOAP Body's payload
	HeaderSchema = "ascio-2013-02.xsd" // validates SecurityHeaderDetails
)
