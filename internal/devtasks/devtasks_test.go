package devtasks_test

import (
	"bytes"
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/devtasks"
	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// The zero-install entry compiles the magefiles and lists every target
// with its whole summary: for each target mage lists, the line is the
// first paragraph of the target's doc comment, not a first "sentence" cut
// at an abbreviation. The targets come from the compiled list, and the
// list must name every target the magefiles declare.
func TestMagefileListsTargets(t *testing.T) {
	goBin := testrig.RequireTool(t, "go")
	cmd := exec.Command(goBin, "run", "magefile.go", "-l")
	cmd.Dir = testrig.RepoRoot(t)
	unlock := testrig.LockMage(t)
	out, err := cmd.CombinedOutput()
	unlock()
	if err != nil {
		t.Fatalf("go run magefile.go -l: %v\n%s", err, out)
	}
	line := regexp.MustCompile(`(?m)^  ([a-z]+(?::[a-zA-Z]+)?)\*?\s+(\S.*)$`)
	listed := map[string]string{}
	for _, m := range line.FindAllStringSubmatch(string(out), -1) {
		listed[m[1]] = m[2]
	}
	docs := targetDocs(t, filepath.Join(testrig.RepoRoot(t), "magefiles"))
	if len(listed) < 10 || len(docs) < 10 {
		t.Fatalf("%d targets listed, %d declared:\n%s", len(listed), len(docs), out)
	}
	for target, summary := range listed {
		doc, ok := docs[target]
		if !ok {
			t.Errorf("target %s listed, but no doc comment found for it", target)
			continue
		}
		if summary != doc {
			t.Errorf("target %s: mage -l shows\n\t%q\nthe doc comment says\n\t%q", target, summary, doc)
		}
		if len(summary) < 20 || strings.Contains(strings.ToLower(summary), "todo") {
			t.Errorf("target %s has no real description: %q", target, summary)
		}
	}
	for target := range docs {
		if _, ok := listed[target]; !ok {
			t.Errorf("target %s declared but not listed", target)
		}
	}
}

// targetDocs reads the magefiles' targets (exported functions, and
// exported methods of mg.Namespace types) and the first paragraph of each
// doc comment, without the leading target name, as mage prints it
// (backquotes become single quotes).
func targetDocs(t *testing.T, dir string) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	matches, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	namespaces := map[string]bool{}
	for _, path := range matches {
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
		ast.Inspect(f, func(n ast.Node) bool {
			if ts, ok := n.(*ast.TypeSpec); ok {
				if sel, ok := ts.Type.(*ast.SelectorExpr); ok && sel.Sel.Name == "Namespace" {
					namespaces[ts.Name.Name] = true
				}
			}
			return true
		})
	}
	docs := map[string]string{}
	for _, f := range files {
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || !fd.Name.IsExported() || fd.Doc == nil {
				continue
			}
			name := lowerFirst(fd.Name.Name)
			if fd.Recv != nil {
				id, ok := fd.Recv.List[0].Type.(*ast.Ident)
				if !ok || !namespaces[id.Name] {
					continue
				}
				name = strings.ToLower(id.Name) + ":" + name
			}
			para, _, _ := strings.Cut(fd.Doc.Text(), "\n\n")
			para = strings.Join(strings.Fields(para), " ")
			if first, rest, ok := strings.Cut(para, " "); ok && strings.EqualFold(first, fd.Name.Name) {
				para = rest
			}
			docs[name] = strings.ReplaceAll(para, "`", "'")
		}
	}
	return docs
}

func lowerFirst(s string) string { return strings.ToLower(s[:1]) + s[1:] }

func TestTestRunsVetThenTests(t *testing.T) {
	f := &execx.Fake{}
	var out bytes.Buffer
	if err := devtasks.Test(context.Background(), f, "go", &out); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(f.Commands(), " | ")
	want := "go vet ./... | go vet -tags mage ./magefiles/ | go test -count=1 -timeout=40m ./... | go test -count=1 -run V2 ./internal/strictjson/"
	if got != want {
		t.Fatalf("commands %q, want %q", got, want)
	}
	f = &execx.Fake{Respond: func(c execx.Cmd) (execx.Result, error) { return execx.Result{}, execx.Failf("vet failed") }}
	if env := devtasks.TestCommands("go")[3].Env; len(env) != 1 || env[0] != "GOEXPERIMENT=jsonv2" {
		t.Errorf("the JSON v2 comparison runs with %q", env)
	}
	if err := devtasks.Test(context.Background(), f, "go", &out); err == nil || len(f.Calls) != 1 {
		t.Fatalf("a failing vet must stop the suite: %v after %d calls", err, len(f.Calls))
	}
}
