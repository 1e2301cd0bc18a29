package devtasks_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
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
