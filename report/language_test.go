package report

import (
	"slices"
	"testing"

	"github.com/errpd/errpd/store"
)

// The notice's language and a language fallback are columns of their own.
func TestLanguageColumns(t *testing.T) {
	r := NewRow(store.Step{ID: "x.com/20250301T000000Z/reminder1", Domain: "x.com", Notice: "reminder1",
		Language: "de", LanguageFallback: "it"}, store.CycleFacts{Mode: "expire"})
	rec := r.record()
	for i, col := range header {
		switch col {
		case "language":
			if rec[i] != "de" {
				t.Errorf("language column %q", rec[i])
			}
		case "language_fallback":
			if rec[i] != "it" {
				t.Errorf("language_fallback column %q", rec[i])
			}
		}
	}
	if len(rec) != len(header) {
		t.Fatalf("%d fields for %d columns", len(rec), len(header))
	}
	if !slices.Contains(header, "language") || !slices.Contains(header, "language_fallback") {
		t.Errorf("header %v", header)
	}
}
