package templates

import (
	"bytes"
	"reflect"
	"strconv"
	"text/template/parse"
)

// total reports whether executing a template can fail for no value of
// Data, so that Check may skip it: it holds only text, comments, prints
// of a string or int field of Data ({{.Domain}}), and {{if}}/{{else}} on
// such a field alone or compared with a constant of the field's type
// ({{if eq .DaysLeft 1}}). Anything else (a function, a method, a field
// Data lacks, {{range}}, {{with}}, {{template}}, a variable) may fail on
// some row and not on others, so such a template is executed in full.
//
// An HTML template must be given its tree before its first execution:
// html/template then adds its escapers to the tree, which return strings
// and no error, but are not in this list.
func total(t *parse.Tree) bool {
	return t != nil && t.Root != nil && totalList(t.Root)
}

// fixedSubject reports whether a subject template can neither fail, nor
// render empty, nor render a line break, whatever the Data: it is total,
// prints text other than white space outside any {{if}}, and has no CR or
// LF in any of its text (Data.check refuses variables with one).
func fixedSubject(t *parse.Tree) bool {
	if !total(t) {
		return false
	}
	printed := false
	for _, n := range t.Root.Nodes {
		if tn, ok := n.(*parse.TextNode); ok && len(bytes.TrimSpace(tn.Text)) > 0 {
			printed = true
		}
	}
	return printed && !breaks(t.Root)
}

// breaks reports whether any text in l, in any branch, has a CR or LF.
func breaks(l *parse.ListNode) bool {
	if l == nil {
		return false
	}
	for _, n := range l.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			if bytes.ContainsAny(n.Text, "\r\n") {
				return true
			}
		case *parse.IfNode:
			if breaks(n.List) || breaks(n.ElseList) {
				return true
			}
		}
	}
	return false
}

func totalList(l *parse.ListNode) bool {
	if l == nil {
		return true
	}
	for _, n := range l.Nodes {
		if !totalNode(n) {
			return false
		}
	}
	return true
}

func totalNode(n parse.Node) bool {
	switch n := n.(type) {
	case *parse.TextNode, *parse.CommentNode:
		return true
	case *parse.ActionNode:
		_, ok := plainField(n.Pipe)
		return ok
	case *parse.IfNode:
		return totalCondition(n.Pipe) && totalList(n.List) && totalList(n.ElseList)
	}
	return false
}

// plainField is the kind of the Data field a pipeline is nothing but,
// as in {{.Domain}}.
func plainField(p *parse.PipeNode) (reflect.Kind, bool) {
	if p == nil || len(p.Decl) > 0 || p.IsAssign || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
		return 0, false
	}
	return dataField(p.Cmds[0].Args[0])
}

// dataField is the kind of the string or int field of Data that n names.
func dataField(n parse.Node) (reflect.Kind, bool) {
	f, ok := n.(*parse.FieldNode)
	if !ok || len(f.Ident) != 1 {
		return 0, false
	}
	sf, ok := reflect.TypeFor[Data]().FieldByName(f.Ident[0])
	if !ok || !sf.IsExported() {
		return 0, false
	}
	switch k := sf.Type.Kind(); k {
	case reflect.String, reflect.Int:
		return k, true
	}
	return 0, false
}

// comparisons are text/template's built-in comparisons, which compare an
// int with an int and a string with a string without error (the set
// defines no functions of its own that could shadow them).
var comparisons = map[string]bool{"eq": true, "ne": true, "lt": true, "le": true, "gt": true, "ge": true}

// totalCondition reports whether an {{if}} pipeline cannot fail: a field
// alone, or a comparison of a field with a constant of its type.
func totalCondition(p *parse.PipeNode) bool {
	if _, ok := plainField(p); ok {
		return true
	}
	if p == nil || len(p.Decl) > 0 || p.IsAssign || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 3 {
		return false
	}
	args := p.Cmds[0].Args
	id, ok := args[0].(*parse.IdentifierNode)
	if !ok || !comparisons[id.Ident] {
		return false
	}
	field, constant := args[1], args[2]
	if _, isField := field.(*parse.FieldNode); !isField {
		field, constant = constant, field
	}
	kind, ok := dataField(field)
	if !ok {
		return false
	}
	switch c := constant.(type) {
	case *parse.NumberNode:
		// A decimal integer only: 1.0 or 1e3 is a float64, which eq
		// refuses to compare with an int.
		_, err := strconv.ParseInt(c.Text, 10, 64)
		return kind == reflect.Int && err == nil
	case *parse.StringNode:
		return kind == reflect.String
	}
	return false
}
