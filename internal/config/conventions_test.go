package config_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/testrig"
)

// envReaders are the functions that read the process environment. Only
// internal/config may call them: every variable is declared, described and
// marked secret or not in one place. internal/execx hands the environment
// to child processes (minus the secrets), which is its job.
var envReaders = map[string]map[string]bool{
	"os":      {"Getenv": true, "LookupEnv": true, "Environ": true, "ExpandEnv": true},
	"syscall": {"Getenv": true, "Environ": true},
}

var envReaderAllowed = map[string]string{
	"internal/execx/execx.go": "the base environment of child processes, secrets stripped",
	// mage's generated main, there only while a test runs `go run
	// magefile.go -l` (internal/devtasks) in parallel with this one
	"magefiles/mage_output_file.go": "mage's own flags (MAGEFILE_*), not ours",
}

func TestOnlyConfigReadsTheEnvironment(t *testing.T) {
	root := testrig.RepoRoot(t)
	fset := token.NewFileSet()
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			if rel == "internal/config" || strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") || envReaderAllowed[rel] != "" {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		n++
		for _, call := range envCalls(f) {
			t.Errorf("%s: %s reads the environment; declare the variable in internal/config and pass the Config down", fset.Position(call.Pos()), exprString(call))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 50 {
		t.Fatalf("looked at %d files: the walk is broken", n)
	}
}

// envCalls finds references to envReaders through the file's own import
// names.
func envCalls(f *ast.File) []*ast.SelectorExpr {
	local := map[string]string{} // local name -> import path
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		name := path[strings.LastIndex(path, "/")+1:]
		if imp.Name != nil {
			name = imp.Name.Name
		}
		local[name] = path
	}
	var out []*ast.SelectorExpr
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if id, ok := sel.X.(*ast.Ident); ok && envReaders[local[id.Name]][sel.Sel.Name] {
			out = append(out, sel)
		}
		return true
	})
	return out
}

func exprString(sel *ast.SelectorExpr) string {
	return sel.X.(*ast.Ident).Name + "." + sel.Sel.Name
}
