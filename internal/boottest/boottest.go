// Package boottest runs the NixOS tests of the editions (tests/ in the
// repository): it names the flake attribute of one test, builds it with
// `nix build` streaming the test driver's log, and on failure reports the
// last lines of that log, where the driver says what went wrong.
package boottest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/socioprophet/sourceos/internal/execx"
)

// Kind is the kind of test.
type Kind string

const (
	// Boot boots an edition and checks what it promises; a flake check.
	Boot Kind = "boot"
	// Install installs an edition onto an empty disk; opt-in, not a flake
	// check (it lives under legacyPackages.<system>.tests).
	Install Kind = "install"
	// DiskBoot boots the edition's qcow2 package itself (not the edition in
	// the test framework's VM) to the edition's target; opt-in, not a flake
	// check (legacyPackages.<system>.tests).
	DiskBoot Kind = "disk"
)

// kinds are the kinds Validate accepts.
var kinds = []Kind{Boot, Install, DiskBoot}

// Arches are the architectures tests are defined for.
var Arches = []string{"x86_64", "aarch64"}

var editionRe = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// Request names one test.
type Request struct {
	Flake   string // flake reference, e.g. path:/src
	Arch    string // x86_64 or aarch64
	Edition string // desktop, server, edge
	Kind    Kind
}

// Validate checks a request before anything runs.
func (r Request) Validate() error {
	switch {
	case r.Flake == "":
		return errors.New("boot test: no flake")
	case !slices.Contains(Arches, r.Arch):
		return fmt.Errorf("boot test: arch %q is not one of %s", r.Arch, strings.Join(Arches, ", "))
	case !editionRe.MatchString(r.Edition):
		return fmt.Errorf("boot test: %q is not an edition name", r.Edition)
	case !slices.Contains(kinds, r.Kind):
		return fmt.Errorf("boot test: kind %q is not boot, install or disk", r.Kind)
	}
	return nil
}

// Name is the test's name: edition-<edition>-<kind> for a boot or install
// test, image-<edition>-qcow2-boot for a disk image boot.
func (r Request) Name() string {
	if r.Kind == DiskBoot {
		return fmt.Sprintf("image-%s-qcow2-boot", r.Edition)
	}
	return fmt.Sprintf("edition-%s-%s", r.Edition, r.Kind)
}

// Attr is the flake attribute of the test: checks.<arch>-linux.<name> for a
// boot test, legacyPackages.<arch>-linux.tests.<name> for the opt-in ones
// (install, disk).
func (r Request) Attr() string {
	if r.Kind == Boot {
		return fmt.Sprintf("checks.%s-linux.%s", r.Arch, r.Name())
	}
	return fmt.Sprintf("legacyPackages.%s-linux.tests.%s", r.Arch, r.Name())
}

// BuildArgs is the argv (after "nix") that runs the test: building the
// test's derivation boots the machines and runs the test script. The log
// goes to stderr (-L); the pinned nixpkgs of flake.lock is used as it is.
func BuildArgs(r Request) []string {
	return []string{"build", "--no-link", "--print-build-logs", "--no-update-lock-file", r.Flake + "#" + r.Attr()}
}

// Options is what Run needs.
type Options struct {
	Run execx.Runner
	// Stream receives the test log as it is produced, each line prefixed.
	Stream io.Writer
	// TailLines is how many log lines a failure reports (default 40).
	TailLines int
}

// Failure is a test that ran and failed (or could not be built).
type Failure struct {
	Attr string
	// Tail holds the last lines of the log.
	Tail []string
	Err  error
}

func (f *Failure) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "NixOS test %s failed: %v", f.Attr, f.cause())
	if len(f.Tail) > 0 {
		fmt.Fprintf(&b, "\nlast %d lines of its log:", len(f.Tail))
		for _, l := range f.Tail {
			b.WriteString("\n    " + l)
		}
	}
	return b.String()
}

// cause is the error without the stderr tail an execx error carries (the
// log tail is reported once, above).
func (f *Failure) cause() string {
	var xe *execx.Error
	if errors.As(f.Err, &xe) {
		if xe.ExitCode >= 0 {
			return fmt.Sprintf("%s exited with status %d", xe.Cmd, xe.ExitCode)
		}
		return fmt.Sprintf("%s: %v", xe.Cmd, xe.Err)
	}
	return f.Err.Error()
}

func (f *Failure) Unwrap() error { return f.Err }

// Run runs one test with real Nix, streaming its log to o.Stream.
func Run(ctx context.Context, o Options, r Request) error {
	if err := r.Validate(); err != nil {
		return err
	}
	if o.TailLines <= 0 {
		o.TailLines = 40
	}
	stream := o.Stream
	if stream == nil {
		stream = io.Discard
	}
	fmt.Fprintf(stream, "==> NixOS test %s#%s\n", r.Flake, r.Attr())
	log := execx.NewPrefixWriter(stream, "    │ ", o.TailLines)
	_, err := o.Run.Run(ctx, execx.Cmd{Name: "nix", Args: BuildArgs(r), Stderr: log})
	log.Flush()
	if err != nil {
		return &Failure{Attr: r.Attr(), Tail: log.Tail(), Err: err}
	}
	fmt.Fprintf(stream, "==> %s passed\n", r.Name())
	return nil
}
