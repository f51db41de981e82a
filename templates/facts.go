package templates

import (
	"slices"
	"strings"
)

// Fact is something ERRP wants a notice to tell the registrant, and the
// template variable that tells it.
type Fact struct {
	Var    string // the variable's name, e.g. "RenewalURL" for {{.RenewalURL}}
	What   string // what it tells, for people
	Source string // where the requirement comes from, e.g. "ERRP 4.1"
}

func (f Fact) String() string { return "." + f.Var + " (" + f.What + ", " + f.Source + ")" }

// The facts; docs/templates.md lists them with the same sources.
var (
	factDomainUnicode = Fact{"DomainUnicode", "the domain as people read it", "ERRP 2.1: the notice is about this registration"}
	factDomain        = Fact{"Domain", "the domain as an A-label", "ERRP 2.1: the notice is about this registration"}
	factExpiry        = Fact{"ExpiryDate", "the expiry date and time with its zone", "ERRP 2.1.1 and 2.1.2"}
	factRenewalURL    = Fact{"RenewalURL", "how to renew", "ERRP 2.1.2: renewal or restore instructions"}
	factFeesURL       = Fact{"FeesURL", "where the renewal, post-expiration renewal and restore fees are published", "ERRP 4.1"}
	factSupport       = Fact{"Support", "whom to ask", "issue 12: a support contact in every notice"}
	factSuspension    = Fact{"SuspensionDate", "when DNS resolution will be interrupted", "ERRP 2.2"}
	factRenewBy       = Fact{"RenewBy", "the last date the domain can still be renewed", "ERRP 2.2: renewable during the interruption"}
	factRedemptionEnd = Fact{"RedemptionEnd", "until when a deleted domain can be restored, at the restore fee", "ERRP 3.1: Redemption Grace Period"}
)

// RequiredFacts are the facts the notice kind (MODE-NOTICE) must use:
// every notice names the domain, its expiry, how to renew, the fees and a
// contact; an expire-mode notice before expiry says when DNS stops and
// until when the domain can be renewed; the notices after expiry say until
// when it can be renewed and until when, once deleted, restored.
func RequiredFacts(kind string) []Fact {
	facts := []Fact{factDomainUnicode, factDomain, factExpiry, factRenewalURL, factFeesURL, factSupport}
	switch kind {
	case "expire-reminder1", "expire-reminder2":
		facts = append(facts, factSuspension, factRenewBy)
	case "expire-reminder3", "expire-suspension":
		facts = append(facts, factRenewBy, factRedemptionEnd)
	}
	return facts
}

// value is the text a fact prints for d.
func (d Data) value(f Fact) string {
	switch f.Var {
	case "DomainUnicode":
		return d.DomainUnicode
	case "Domain":
		return d.Domain
	case "ExpiryDate":
		return d.ExpiryDate
	case "RenewalURL":
		return d.RenewalURL
	case "FeesURL":
		return d.FeesURL
	case "Support":
		return d.Support
	case "SuspensionDate":
		return d.SuspensionDate
	case "RenewBy":
		return d.RenewBy
	case "RedemptionEnd":
		return d.RedemptionEnd
	}
	return ""
}

// MissingFacts lists the required facts of d's notice whose values a
// rendered notice does not show in text (the subject counts for both
// bodies): the check the tests make of every built-in language.
func MissingFacts(d Data, r Rendered, body string) []Fact {
	var missing []Fact
	for _, f := range RequiredFacts(d.Kind()) {
		v := d.value(f)
		if !strings.Contains(r.Subject, v) && !strings.Contains(body, v) {
			missing = append(missing, f)
		}
	}
	return slices.Clip(missing)
}
