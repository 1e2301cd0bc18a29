// Package devtasks holds the developer targets: the test suite and checks
// that are run on the repository itself.
package devtasks

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/socioprophet/sourceos/internal/execx"
)

// TestCommands is the whole test suite, in order: vet (the magefiles too,
// which carry the mage build tag), then every test with real Nix, minisign
// and the GCS emulator, then internal/strictjson's comparison with the
// standard library's JSON v2, which Go builds only with GOEXPERIMENT=jsonv2
// (it tells when v2 stops being an experiment or changes a rule).
func TestCommands(goBin string) []execx.Cmd {
	return []execx.Cmd{
		{Name: goBin, Args: []string{"vet", "./..."}},
		{Name: goBin, Args: []string{"vet", "-tags", "mage", "./magefiles/"}},
		{Name: goBin, Args: []string{"test", "-count=1", "-timeout=40m", "./..."}},
		{Name: goBin, Args: []string{"test", "-count=1", "-run", "V2", "./internal/strictjson/"}, Env: []string{"GOEXPERIMENT=jsonv2"}},
	}
}

// Test runs the test suite, streaming its output to w.
func Test(ctx context.Context, run execx.Runner, goBin string, w io.Writer) error {
	for _, c := range TestCommands(goBin) {
		c.Stdout, c.Stderr = w, w
		if _, err := run.Run(ctx, c); err != nil {
			return fmt.Errorf("test suite: %w", err)
		}
	}
	return nil
}

// ToolsCommand installs what the test suite needs (nix, minisign,
// shellcheck, busybox-static) and configures Nix's sandbox, with the
// repository's own script, run from the repository root.
func ToolsCommand(root string) execx.Cmd {
	return execx.Cmd{Name: "bash", Args: []string{"scripts/ensure-tools.sh"}, Dir: root}
}

// KVMRule is the udev rule that opens /dev/kvm to every user, so Nix's build
// users can run the QEMU of NixOS tests with hardware virtualisation.
const KVMRule = `KERNEL=="kvm", GROUP="kvm", MODE="0666", OPTIONS+="static_node=kvm"` + "\n"

// KVMRulePath is where the rule is installed.
const KVMRulePath = "/etc/udev/rules.d/99-sourceos-kvm.rules"

// KVMCommands install the rule and apply it to the existing device; through
// sudo unless the caller is root.
func KVMCommands(asRoot bool) []execx.Cmd {
	cmds := []execx.Cmd{
		{Name: "tee", Args: []string{KVMRulePath}, Stdin: strings.NewReader(KVMRule)},
		{Name: "udevadm", Args: []string{"control", "--reload-rules"}},
		{Name: "udevadm", Args: []string{"trigger", "--name-match=kvm"}},
	}
	if asRoot {
		return cmds
	}
	for i, c := range cmds {
		cmds[i] = execx.Cmd{Name: "sudo", Args: append([]string{c.Name}, c.Args...), Stdin: c.Stdin}
	}
	return cmds
}

// RunAll runs cmds in order with their output going to w, stopping at the
// first failure.
func RunAll(ctx context.Context, run execx.Runner, w io.Writer, what string, cmds []execx.Cmd) error {
	for _, c := range cmds {
		if c.Stdout == nil {
			c.Stdout = io.Discard
		}
		c.Stderr = w
		if _, err := run.Run(ctx, c); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}
