package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Templates is the [templates] section: the partner's overrides and what
// a template that leaves out a fact ERRP requires does.
type Templates struct {
	// Dir is the folder of the partner's template overrides; empty uses
	// the embedded templates only.
	Dir string `toml:"dir"`
	// Lint decides what a template that does not use a required fact
	// does, at start-up and on SIGHUP: "refuse" (the default) stops
	// errpd, naming the file and the facts; "warn" logs them.
	Lint string `toml:"lint"`
}

// UnmarshalTOML reads the section, and also the older top-level
// `templates = "DIR"`, which keeps meaning [templates] dir = "DIR". It
// checks the keys itself: the decoder leaves that to a type with its own
// unmarshaller.
func (t *Templates) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		t.Dir = v
		return nil
	case map[string]any:
		var errs []error
		for k, x := range v {
			s, ok := x.(string)
			switch {
			case k != "dir" && k != "lint":
				errs = append(errs, fmt.Errorf("unknown key templates.%s", k))
			case !ok:
				errs = append(errs, fmt.Errorf("templates.%s: want a string, got %T", k, x))
			case k == "dir":
				t.Dir = s
			default:
				t.Lint = s
			}
		}
		slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		return errors.Join(errs...)
	}
	return fmt.Errorf("templates: want a [templates] section (or a folder name), got %T", v)
}

func (t Templates) validate() error {
	if t.Lint != "refuse" && t.Lint != "warn" {
		return fmt.Errorf("templates.lint %q is not refuse or warn", t.Lint)
	}
	return nil
}
