package devtasks_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/devtasks"
	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/testrig"
)

func TestKVMCommands(t *testing.T) {
	for _, c := range []struct {
		root bool
		want []string
	}{
		{true, []string{"tee " + devtasks.KVMRulePath, "udevadm control --reload-rules", "udevadm trigger --name-match=kvm"}},
		{false, []string{"sudo tee " + devtasks.KVMRulePath, "sudo udevadm control --reload-rules", "sudo udevadm trigger --name-match=kvm"}},
	} {
		cmds := devtasks.KVMCommands(c.root)
		if len(cmds) != len(c.want) {
			t.Fatalf("root=%v: %d commands, want %d", c.root, len(cmds), len(c.want))
		}
		for i, cmd := range cmds {
			if cmd.String() != c.want[i] {
				t.Errorf("root=%v: command %d is %q, want %q", c.root, i, cmd.String(), c.want[i])
			}
		}
		rule, err := io.ReadAll(cmds[0].Stdin)
		if err != nil || string(rule) != devtasks.KVMRule {
			t.Errorf("root=%v: tee gets %q (%v), want the rule", c.root, rule, err)
		}
	}
	if !strings.Contains(devtasks.KVMRule, `KERNEL=="kvm"`) || !strings.Contains(devtasks.KVMRule, `MODE="0666"`) {
		t.Errorf("rule %q does not open /dev/kvm", devtasks.KVMRule)
	}
}

func TestRunAllStopsAtTheFirstFailure(t *testing.T) {
	f := &execx.Fake{Respond: func(c execx.Cmd) (execx.Result, error) {
		if c.Name == "udevadm" {
			return execx.Result{Stderr: []byte("no permission\n")}, errors.New("exit status 1")
		}
		return execx.Result{}, nil
	}}
	var out bytes.Buffer
	err := devtasks.RunAll(context.Background(), f, &out, "enable kvm", devtasks.KVMCommands(true))
	if err == nil || !strings.Contains(err.Error(), "enable kvm") {
		t.Fatalf("err %v", err)
	}
	if got := f.Commands(); len(got) != 2 {
		t.Fatalf("ran %q, want tee then the failing udevadm only", got)
	}
	if !strings.Contains(out.String(), "no permission") {
		t.Fatalf("stderr not passed on: %q", out.String())
	}
}

func TestToolsCommandRunsTheRepositoryScript(t *testing.T) {
	root := testrig.RepoRoot(t)
	c := devtasks.ToolsCommand(root)
	if c.String() != "bash scripts/ensure-tools.sh" || c.Dir != root {
		t.Fatalf("command %q in %q", c.String(), c.Dir)
	}
	bash := testrig.RequireTool(t, "bash")
	if out, err := exec.Command(bash, "-n", filepath.Join(root, "scripts", "ensure-tools.sh")).CombinedOutput(); err != nil {
		t.Fatalf("scripts/ensure-tools.sh does not parse: %v\n%s", err, out)
	}
}

// Every place that lists what scripts/ensure-tools.sh installs lists what
// it installs, in its order: the README, docs/testing.md, test:tools'
// summary and the script's own header.
func TestEnsureToolsListsAreTheScripts(t *testing.T) {
	root := testrig.RepoRoot(t)
	script := readRepoFile(t, root, "scripts/ensure-tools.sh")
	var want []string
	for _, m := range regexp.MustCompile(`packages\+=\(([a-z0-9-]+)\)`).FindAllStringSubmatch(script, -1) {
		want = append(want, m[1])
	}
	if len(want) < 5 {
		t.Fatalf("read %q from the script", want)
	}
	list := strings.Join(want[:len(want)-1], ", ")
	for _, c := range []struct{ file, text string }{
		{"README.md", "(" + list + ", " + want[len(want)-1] + ")"},
		{"docs/testing.md", "(" + list + ", " + want[len(want)-1] + ")"},
		{"magefiles/test.go", "(scripts/ensure-tools.sh: " + list + ", " + want[len(want)-1] + ")"},
		{"scripts/ensure-tools.sh", list + "\n# and " + want[len(want)-1] + " from Debian's packages"},
	} {
		text := readRepoFile(t, root, c.file)
		if !strings.Contains(strings.Join(strings.Fields(text), " "), strings.Join(strings.Fields(c.text), " ")) {
			t.Errorf("%s does not list what scripts/ensure-tools.sh installs: want %q", c.file, c.text)
		}
	}
}

func readRepoFile(t *testing.T, root, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
