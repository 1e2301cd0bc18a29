package workflows

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"sort"
	"strings"
)

// MageTargets lists the targets that the Go files in dir (magefiles/)
// declare, the way mage names them: exported functions of package main are
// `name`, exported methods of a `type X mg.Namespace` are `x:name`. Names
// are lower case (mage matches targets case-insensitively). The files are
// parsed, not compiled, so the list is available while a target does not
// build yet.
func MageTargets(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, fmt.Errorf("list magefiles: %w", err)
	}
	fset := token.NewFileSet()
	namespaces := map[string]bool{}
	var decls []*ast.FuncDecl
	for _, f := range files {
		af, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", f, err)
		}
		if af.Name.Name != "main" {
			continue
		}
		for _, d := range af.Decls {
			switch d := d.(type) {
			case *ast.GenDecl:
				collectNamespaces(d, namespaces)
			case *ast.FuncDecl:
				decls = append(decls, d)
			}
		}
	}
	var out []string
	for _, d := range decls {
		if t, ok := targetName(d, namespaces); ok {
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out, nil
}

func collectNamespaces(d *ast.GenDecl, into map[string]bool) {
	for _, s := range d.Specs {
		ts, ok := s.(*ast.TypeSpec)
		if !ok {
			continue
		}
		if sel, ok := ts.Type.(*ast.SelectorExpr); ok && sel.Sel.Name == "Namespace" {
			if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "mg" {
				into[ts.Name.Name] = true
			}
		}
	}
}

func targetName(d *ast.FuncDecl, namespaces map[string]bool) (string, bool) {
	if !d.Name.IsExported() {
		return "", false
	}
	if d.Recv == nil {
		return strings.ToLower(d.Name.Name), true
	}
	if len(d.Recv.List) != 1 {
		return "", false
	}
	recv, ok := d.Recv.List[0].Type.(*ast.Ident)
	if !ok || !namespaces[recv.Name] {
		return "", false
	}
	return strings.ToLower(recv.Name + ":" + d.Name.Name), true
}
