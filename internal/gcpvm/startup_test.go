package gcpvm_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/gcpvm"
	"github.com/socioprophet/sourceos/internal/testrig"
)

const startup = "scripts/gcp-startup.sh"

func TestStartupScriptIsShellcheckClean(t *testing.T) {
	sc := testrig.RequireTool(t, "shellcheck")
	out, err := exec.Command(sc, "-S", "warning", filepath.Join(testrig.RepoRoot(t), startup)).CombinedOutput()
	if err != nil {
		t.Errorf("shellcheck -S warning %s: %v\n%s", startup, err, out)
	}
}

// The script reads only documented attributes and ends by handing over to
// the target.
func TestStartupScriptUsesDocumentedAttributes(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testrig.RepoRoot(t), startup))
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, a := range gcpvm.Attributes {
		known[a.Name] = true
	}
	used := regexp.MustCompile(`attr (sourceos-[a-z0-9-]+)`).FindAllStringSubmatch(string(b), -1)
	if len(used) == 0 {
		t.Fatal("the script reads no attributes")
	}
	for _, m := range used {
		if !known[m[1]] {
			t.Errorf("%s reads %s, which gcpvm.Attributes does not document", startup, m[1])
		}
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if last := lines[len(lines)-1]; last != "exec mage gcp:build" {
		t.Errorf("last line = %q, want the hand-over to mage gcp:build", last)
	}
}
