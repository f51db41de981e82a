package templates

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	texttemplate "text/template"
	"text/template/parse"
)

// Problem is one template file that leaves out facts its notice must
// tell.
type Problem struct {
	File    string // e.g. "DIR/acme/de/expire-reminder1.txt"
	Missing []Fact
}

func (p Problem) Error() string {
	names := make([]string, len(p.Missing))
	for i, f := range p.Missing {
		names[i] = f.String()
	}
	return fmt.Sprintf("templates: %s does not use the required %s: %s",
		p.File, plural(len(names), "fact", "facts"), strings.Join(names, "; "))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// Lint checks every notice of the set, built-in and the partner's: each
// body (text and HTML), together with the subject, must print every fact
// RequiredFacts names for its notice on every path through the template.
// It reads the parsed templates, not their text: a fact printed in only
// one branch of an {{if}}, only inside {{range}} or {{with}} (which may
// not run), or only in a comment does not count.
func (s *Set) Lint() []Problem {
	var out []Problem
	for _, k := range slices.SortedFunc(maps.Keys(s.t), func(a, b key) int {
		return strings.Compare(a.brand+"/"+a.lang+"/"+a.kind, b.brand+"/"+b.lang+"/"+b.kind)
	}) {
		n := s.t[k]
		subject := printedBy(n.subject.Tree, textTrees(n.subject.Templates()))
		for _, body := range []struct {
			tree *parse.Tree
			defs map[string]*parse.Tree
		}{
			{n.text.Tree, textTrees(n.text.Templates())},
			{n.html.Tree, htmlTrees(n)},
		} {
			used := printedBy(body.tree, body.defs)
			var missing []Fact
			for _, f := range RequiredFacts(k.kind) {
				if !subject[f.Var] && !used[f.Var] {
					missing = append(missing, f)
				}
			}
			if len(missing) > 0 {
				out = append(out, Problem{File: body.tree.ParseName, Missing: missing})
			}
		}
	}
	return out
}

func textTrees(ts []*texttemplate.Template) map[string]*parse.Tree {
	m := map[string]*parse.Tree{}
	for _, t := range ts {
		if t.Tree != nil {
			m[t.Name()] = t.Tree
		}
	}
	return m
}

func htmlTrees(n *notice) map[string]*parse.Tree {
	m := map[string]*parse.Tree{}
	for _, t := range n.html.Templates() {
		if t.Tree != nil {
			m[t.Name()] = t.Tree
		}
	}
	return m
}

// printedBy is the set of Data fields a template prints whatever path
// its execution takes, following {{template}} calls into the templates
// defined alongside it.
func printedBy(t *parse.Tree, defs map[string]*parse.Tree) map[string]bool {
	if t == nil || t.Root == nil {
		return map[string]bool{}
	}
	w := walker{defs: defs}
	return w.list(t.Root, true)
}

type walker struct {
	defs  map[string]*parse.Tree
	depth int // of {{template}} calls, against a template that calls itself
}

// list is what a list of nodes prints on every path; dotIsData says
// whether dot is the notice's Data (not inside {{range}} or {{with}}).
func (w *walker) list(l *parse.ListNode, dotIsData bool) map[string]bool {
	out := map[string]bool{}
	if l == nil {
		return out
	}
	for _, n := range l.Nodes {
		maps.Copy(out, w.node(n, dotIsData))
	}
	return out
}

func (w *walker) node(n parse.Node, dotIsData bool) map[string]bool {
	switch n := n.(type) {
	case *parse.ActionNode:
		if len(n.Pipe.Decl) > 0 {
			return map[string]bool{} // {{$x := .Y}} prints nothing
		}
		return fields(n.Pipe, dotIsData)
	case *parse.IfNode:
		return intersect(w.list(n.List, dotIsData), w.list(n.ElseList, dotIsData))
	case *parse.RangeNode:
		// The body may run no time at all, and dot is an element in it.
		return intersect(w.list(n.List, false), w.list(n.ElseList, dotIsData))
	case *parse.WithNode:
		return intersect(w.list(n.List, false), w.list(n.ElseList, dotIsData))
	case *parse.TemplateNode:
		def := w.defs[n.Name]
		if def == nil || w.depth > 10 || n.Pipe == nil || !passesData(n.Pipe, dotIsData) {
			return map[string]bool{}
		}
		w.depth++
		defer func() { w.depth-- }()
		return w.list(def.Root, true)
	}
	return map[string]bool{} // text, comments, break, continue
}

// passesData reports whether {{template "x" PIPE}} hands the notice's
// Data on: PIPE is . (where dot is the Data) or $.
func passesData(p *parse.PipeNode, dotIsData bool) bool {
	if len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
		return false
	}
	switch a := p.Cmds[0].Args[0].(type) {
	case *parse.DotNode:
		return dotIsData
	case *parse.VariableNode:
		return len(a.Ident) == 1 && a.Ident[0] == "$"
	}
	return false
}

// fields are the Data fields a pipeline refers to: .X where dot is the
// Data, $.X anywhere, also as arguments and inside parentheses.
func fields(p *parse.PipeNode, dotIsData bool) map[string]bool {
	out := map[string]bool{}
	var arg func(n parse.Node)
	arg = func(n parse.Node) {
		switch n := n.(type) {
		case *parse.FieldNode:
			if dotIsData {
				out[n.Ident[0]] = true
			}
		case *parse.VariableNode:
			if len(n.Ident) > 1 && n.Ident[0] == "$" {
				out[n.Ident[1]] = true
			}
		case *parse.ChainNode:
			arg(n.Node)
		case *parse.PipeNode:
			for _, c := range n.Cmds {
				for _, a := range c.Args {
					arg(a)
				}
			}
		}
	}
	arg(p)
	return out
}

func intersect(a, b map[string]bool) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		if b[k] {
			out[k] = true
		}
	}
	return out
}
