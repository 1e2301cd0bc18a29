package devtasks_test

import (
	"bytes"
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/devtasks"
	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// The zero-install entry compiles the magefiles and lists every target with
// a real one-line description.
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
	line := regexp.MustCompile(`(?m)^  ([a-z]+(?::[a-zA-Z]+)?)\s+(\S.*)$`)
	listed := map[string]string{}
	for _, m := range line.FindAllStringSubmatch(string(out), -1) {
		listed[m[1]] = m[2]
	}
	for _, target := range []string{"build:desktop", "build:server", "build:edge", "build:custom",
		"cache:push", "cache:verify", "check:contracts", "check:flake", "keys:sign", "keys:cache",
		"sign", "verify", "test:all", "test:boot", "test:install", "test:tools", "test:kvm",
		"bench:cache", "bench:sign", "config:show", "gcp:build"} {
		doc, ok := listed[target]
		if !ok {
			t.Errorf("target %s not listed", target)
			continue
		}
		if len(doc) < 20 || strings.Contains(strings.ToLower(doc), "todo") {
			t.Errorf("target %s has no real description: %q", target, doc)
		}
	}
}

func TestTestRunsVetThenTests(t *testing.T) {
	f := &execx.Fake{}
	var out bytes.Buffer
	if err := devtasks.Test(context.Background(), f, "go", &out); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(f.Commands(), " | ")
	want := "go vet ./... | go vet -tags mage ./magefiles/ | go test -count=1 -timeout=40m ./..."
	if got != want {
		t.Fatalf("commands %q, want %q", got, want)
	}
	f = &execx.Fake{Respond: func(c execx.Cmd) (execx.Result, error) { return execx.Result{}, execx.Failf("vet failed") }}
	if err := devtasks.Test(context.Background(), f, "go", &out); err == nil || len(f.Calls) != 1 {
		t.Fatalf("a failing vet must stop the suite: %v after %d calls", err, len(f.Calls))
	}
}
