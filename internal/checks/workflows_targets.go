package checks

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// MageTargets lists the targets that the Go files in dir (magefiles/)
// declare, the way mage names them: exported functions of package main are
// `name`, exported methods of a `type X mg.Namespace` are `x:name`, and the
// keys of `var Aliases = map[string]interface{}{...}` whose value is one of
// those targets are names too. Names are lower case (mage matches targets
// case-insensitively). The files are parsed, not compiled, so the list is
// available while a target does not build yet.
func MageTargets(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, fmt.Errorf("list magefiles: %w", err)
	}
	fset := token.NewFileSet()
	namespaces := map[string]bool{}
	var decls []*ast.FuncDecl
	var aliases []*ast.KeyValueExpr
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
				aliases = append(aliases, aliasEntries(d)...)
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
	out = append(out, resolveAliases(aliases, out)...)
	sort.Strings(out)
	return out, nil
}

// aliasEntries returns the entries of a `var Aliases = map[...]...{...}`.
func aliasEntries(d *ast.GenDecl) []*ast.KeyValueExpr {
	var out []*ast.KeyValueExpr
	for _, s := range d.Specs {
		vs, ok := s.(*ast.ValueSpec)
		if !ok || len(vs.Names) != 1 || vs.Names[0].Name != "Aliases" || len(vs.Values) != 1 {
			continue
		}
		lit, ok := vs.Values[0].(*ast.CompositeLit)
		if !ok {
			continue
		}
		for _, e := range lit.Elts {
			if kv, ok := e.(*ast.KeyValueExpr); ok {
				out = append(out, kv)
			}
		}
	}
	return out
}

// resolveAliases returns the alias names whose value is one of targets:
// `"name": Func` or `"name": Namespace.Method`.
func resolveAliases(entries []*ast.KeyValueExpr, targets []string) []string {
	var out []string
	for _, kv := range entries {
		key, ok := kv.Key.(*ast.BasicLit)
		if !ok || key.Kind != token.STRING {
			continue
		}
		name, err := strconv.Unquote(key.Value)
		if err != nil {
			continue
		}
		var target string
		switch v := kv.Value.(type) {
		case *ast.Ident:
			target = v.Name
		case *ast.SelectorExpr:
			if x, ok := v.X.(*ast.Ident); ok {
				target = x.Name + ":" + v.Sel.Name
			}
		}
		if target != "" && slices.Contains(targets, strings.ToLower(target)) {
			out = append(out, strings.ToLower(name))
		}
	}
	return out
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
