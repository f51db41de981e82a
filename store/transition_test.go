package store_test

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

var update = flag.Bool("update", false, "rewrite the generated part of docs/state_machine.md")

const (
	stateDoc = "../docs/state_machine.md"
	genBegin = "<!-- generated from store/transition.go by `go test ./store -run TestStateMachineDoc -update`: do not edit by hand -->\n"
	genEnd   = "<!-- end of generated -->\n"
)

// generated is the doc's diagram and edge table, drawn from store.Edges.
func generated() string {
	name := func(s scheduler.State) string {
		if s == store.New {
			return "[*]"
		}
		return string(s)
	}
	var b strings.Builder
	b.WriteString(genBegin + "```mermaid\nstateDiagram-v2\n")
	for _, e := range store.Edges() {
		fmt.Fprintf(&b, "    %s --> %s : %s\n", name(e.From), name(e.To), strings.ReplaceAll(e.By, ":", ";"))
	}
	b.WriteString("```\n\n| from | to | by |\n| --- | --- | --- |\n")
	for _, e := range store.Edges() {
		from := "(new)"
		if e.From != store.New {
			from = "`" + string(e.From) + "`"
		}
		fmt.Fprintf(&b, "| %s | `%s` | %s |\n", from, e.To, e.By)
	}
	return b.String() + genEnd
}

// TestStateMachineDoc holds docs/state_machine.md to the table in
// transition.go: its diagram and edge table are generated from it, and
// each state's "leaves by" names exactly the states it can move to.
func TestStateMachineDoc(t *testing.T) {
	raw, err := os.ReadFile(stateDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	begin, end := strings.Index(doc, genBegin), strings.Index(doc, genEnd)
	if begin < 0 || end < begin {
		t.Fatalf("%s lacks the generated part (%q ... %q)", stateDoc, genBegin, genEnd)
	}
	want := doc[:begin] + generated() + doc[end+len(genEnd):]
	if *update {
		if err := os.WriteFile(stateDoc, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		doc = want
		begin, end = strings.Index(doc, genBegin), strings.Index(doc, genEnd)
	}
	if diff := cmp.Diff(want, doc); diff != "" {
		t.Errorf("%s is not generated from store.Edges (go test ./store -run TestStateMachineDoc -update) (-want +got):\n%s", stateDoc, diff)
	}

	// The prose table: | `state` | meaning | leaves by |.
	row := regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\|[^|]*\\|([^|\\n]*)\\|$")
	tick := regexp.MustCompile("`([a-z_]+)`")
	seen := map[scheduler.State]bool{}
	for _, m := range row.FindAllStringSubmatch(doc[:begin]+doc[end:], -1) {
		from := scheduler.State(m[1])
		seen[from] = true
		named := map[scheduler.State]bool{}
		for _, n := range tick.FindAllStringSubmatch(m[2], -1) {
			if _, err := scheduler.ParseState(n[1]); err == nil && n[1] != m[1] {
				named[scheduler.State(n[1])] = true
			}
		}
		to := map[scheduler.State]bool{}
		for _, e := range store.Edges() {
			if e.From == from && e.To != from {
				to[e.To] = true
			}
		}
		if !maps.Equal(named, to) {
			t.Errorf("%s: the row of %s leaves to %v, the table to %v", stateDoc, from,
				slices.Sorted(maps.Keys(named)), slices.Sorted(maps.Keys(to)))
		}
	}
	for _, s := range scheduler.States {
		if !seen[s] {
			t.Errorf("%s has no row for %s", stateDoc, s)
		}
	}
}
