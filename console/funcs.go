package console

import (
	"html/template"
	"net/url"
	"strconv"
	"time"

	"golang.org/x/net/idna"

	"github.com/errpd/errpd/resolve"
	"github.com/errpd/errpd/store"
)

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "–"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"day": func(t time.Time) string { return t.UTC().Format("Mon 2 Jan") },
	"unicode": func(name string) string {
		if u, err := idna.ToUnicode(name); err == nil {
			return u
		}
		return name
	},
	"path":        url.PathEscape,
	"query":       url.QueryEscape,
	"actionLabel": actionLabel,
	"pct": func(f *float64) string {
		if f == nil {
			return "–"
		}
		return template.HTMLEscapeString(fmtPct(*f))
	},
	"hasMessage": func(s store.Step) bool { return s.SHA256 != "" },
}

func actionLabel(a resolve.Action) string {
	switch a {
	case resolve.Resend:
		return "Resend"
	case resolve.MarkSent:
		return "Mark sent"
	case resolve.Retry:
		return "Retry"
	}
	return string(a)
}

func fmtPct(f float64) string { return strconv.FormatFloat(f*100, 'f', 1, 64) + "%" }
