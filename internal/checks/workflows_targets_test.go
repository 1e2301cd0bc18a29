package checks_test

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/socioprophet/sourceos/internal/checks"
	"github.com/socioprophet/sourceos/internal/testrig"
)

func TestMageTargetsFollowAliases(t *testing.T) {
	root := writeRepo(t, map[string]string{
		"magefiles/a.go": "//go:build mage\n\npackage main\n\nimport \"github.com/magefile/mage/mg\"\n\n" +
			"type Test mg.Namespace\n\n" +
			"var Aliases = map[string]interface{}{\"test\": Test.All, \"v\": Verify, \"ghost\": Test.Nope, \"x\": other}\n\n" +
			"func (Test) All() error { return nil }\n\nfunc Verify() error { return nil }\n\nfunc other() error { return nil }\n",
	})
	got, err := checks.MageTargets(filepath.Join(root, "magefiles"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"test", "test:all", "v", "verify"}
	if !slices.Equal(got, want) {
		t.Fatalf("targets %v, want %v (an alias of nothing declared is no target)", got, want)
	}
}

// The repository's `mage test` is the alias of test:all that .ci/run and
// the README call.
func TestRepositoryTestAlias(t *testing.T) {
	got, err := checks.MageTargets(filepath.Join(testrig.RepoRoot(t), "magefiles"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"test", "test:all", "test:boot", "test:install", "test:tools", "test:kvm"} {
		if !slices.Contains(got, want) {
			t.Errorf("magefiles do not declare %s: %v", want, got)
		}
	}
}
