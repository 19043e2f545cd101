package assets

import (
	"errors"
	"fmt"
	"html/template"
	"text/template/parse"
)

// CheckTemplates reports every call of the template function funcName (the one bound to
// Path) whose argument is a string literal naming no static file, in all templates
// associated with t. Call it after parsing so a misspelt asset fails the boot instead of a
// page render. Calls with a computed argument cannot be checked here; Path still rejects
// them when the page renders.
func (a *Assets) CheckTemplates(t *template.Template, funcName string) error {
	var errs []error
	for _, tmpl := range t.Templates() {
		if tmpl.Tree == nil || tmpl.Tree.Root == nil {
			continue
		}
		for _, lit := range assetLiterals(tmpl.Tree.Root, funcName) {
			if _, err := a.Path(lit); err != nil {
				errs = append(errs, fmt.Errorf("template %q: %w", tmpl.Name(), err))
			}
		}
	}
	return errors.Join(errs...)
}

// assetLiterals collects the string literals passed to funcName under node, both as
// {{asset "x"}} and as {{"x" | asset}}.
func assetLiterals(node parse.Node, funcName string) []string {
	var found []string
	var walk func(parse.Node)
	walkPipe := func(p *parse.PipeNode) {
		if p == nil {
			return
		}
		for i, cmd := range p.Cmds {
			if isIdent(cmd.Args[0], funcName) {
				if len(cmd.Args) > 1 {
					if s, ok := cmd.Args[1].(*parse.StringNode); ok {
						found = append(found, s.Text)
					}
				} else if i > 0 && len(p.Cmds[i-1].Args) == 1 {
					if s, ok := p.Cmds[i-1].Args[0].(*parse.StringNode); ok {
						found = append(found, s.Text)
					}
				}
			}
			for _, arg := range cmd.Args {
				walk(arg)
			}
		}
	}
	walk = func(n parse.Node) {
		switch n := n.(type) {
		case *parse.ListNode:
			if n == nil {
				return
			}
			for _, c := range n.Nodes {
				walk(c)
			}
		case *parse.ActionNode:
			walkPipe(n.Pipe)
		case *parse.PipeNode:
			walkPipe(n)
		case *parse.IfNode:
			walkPipe(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.RangeNode:
			walkPipe(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.WithNode:
			walkPipe(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.TemplateNode:
			walkPipe(n.Pipe)
		case *parse.ChainNode:
			walk(n.Node)
		}
	}
	walk(node)
	return found
}

func isIdent(n parse.Node, name string) bool {
	id, ok := n.(*parse.IdentifierNode)
	return ok && id.Ident == name
}
