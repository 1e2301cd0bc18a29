package checks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/socioprophet/sourceos/internal/catalog"
	"github.com/socioprophet/sourceos/internal/execx"
)

// DefaultFetchTimeout bounds how long the auto mode waits for the flake's
// locked inputs to be substituted or downloaded before it settles for the
// module mode.
const DefaultFetchTimeout = 60 * time.Second

// fetchOptions keep one fetch attempt short: one try, a connect timeout
// (name resolution included) and a stall timeout instead of Nix's
// defaults (five attempts with back-off, no connect timeout, 300 s).
var fetchOptions = []string{
	"--option", "download-attempts", "1",
	"--option", "connect-timeout", "5",
	"--option", "stalled-download-timeout", "15",
}

// FlakeInput is one locked input of a flake and the store path Nix keeps
// it at (computed from the lock's narHash, not fetched).
type FlakeInput struct {
	// Name is the input's path in the lock, e.g. "nixpkgs" or
	// "sops-nix/nixpkgs".
	Name string
	Path string
}

// InputsCmd lists the store paths of the flake's locked inputs without
// fetching anything and without evaluating the flake.
func InputsCmd(nix, flake string) execx.Cmd {
	return execx.Cmd{Name: nix, Args: []string{
		"--extra-experimental-features", "nix-command flakes",
		"flake", "archive", "--json", "--dry-run", "--no-update-lock-file", flake,
	}}
}

// MissingCmd prints the paths that are not valid in the Nix store.
func MissingCmd(nixStore string, paths []string) execx.Cmd {
	return execx.Cmd{Name: nixStore, Args: append([]string{"--check-validity", "--print-invalid"}, paths...)}
}

// FetchCmd fetches the flake's locked inputs into the store (substituting
// them where a substituter has them), with short network timeouts.
func FetchCmd(nix, flake string) execx.Cmd {
	args := []string{"--extra-experimental-features", "nix-command flakes"}
	args = append(args, fetchOptions...)
	args = append(args, "flake", "archive", "--json", "--no-update-lock-file", flake)
	return execx.Cmd{Name: nix, Args: args}
}

// ParseInputs reads the output of InputsCmd: every input, depth first.
func ParseInputs(b []byte) ([]FlakeInput, error) {
	type node struct {
		Path   string           `json:"path"`
		Inputs map[string]*node `json:"inputs"`
	}
	var root node
	if err := json.Unmarshal(b, &root); err != nil {
		return nil, fmt.Errorf("decode flake archive output: %w", err)
	}
	var out []FlakeInput
	var walk func(prefix string, n *node) error
	walk = func(prefix string, n *node) error {
		for _, name := range sortedKeys(n.Inputs) {
			in := n.Inputs[name]
			if in == nil || !strings.HasPrefix(in.Path, "/") {
				return fmt.Errorf("input %s%s: no store path in the flake archive output", prefix, name)
			}
			out = append(out, FlakeInput{Name: prefix + name, Path: in.Path})
			if err := walk(prefix+name+"/", in); err != nil {
				return err
			}
		}
		return nil
	}
	return out, walk("", &root)
}

// ParseMissing reads the output of MissingCmd.
func ParseMissing(b []byte) []string { return strings.Fields(string(b)) }

// inputsProbe is what the auto mode found out about the flake's inputs.
type inputsProbe struct {
	OK bool
	// Why says what was found, for the report's mode line.
	Why string
}

// probeInputs settles whether the flake's locked inputs are usable by the
// nixos mode: already in the store, or fetched within the bound. It never
// evaluates the flake.
func probeInputs(ctx context.Context, opts Options) inputsProbe {
	flake := catalog.FlakeRef(opts.Root)
	r, err := opts.Run.Run(ctx, InputsCmd(opts.Tools.Nix, flake))
	if err != nil {
		return inputsProbe{Why: "the flake's locked inputs cannot be listed: " + nixReason(err, opts.Root)}
	}
	inputs, err := ParseInputs(r.Stdout)
	if err != nil {
		return inputsProbe{Why: err.Error()}
	}
	if len(inputs) == 0 {
		return inputsProbe{OK: true, Why: "the flake has no inputs to fetch"}
	}
	paths := make([]string, len(inputs))
	for i, in := range inputs {
		paths[i] = in.Path
	}
	r, err = opts.Run.Run(ctx, MissingCmd(opts.Tools.NixStore, paths))
	if err != nil {
		return inputsProbe{Why: "cannot query the Nix store: " + nixReason(err, opts.Root)}
	}
	missing := missingNames(inputs, ParseMissing(r.Stdout))
	if len(missing) == 0 {
		return inputsProbe{OK: true, Why: "the flake's locked inputs are in the Nix store"}
	}
	what := strings.Join(missing, ", ") + " " + isOrAre(len(missing)) + " not in the Nix store and could not be fetched"
	fctx, cancel := context.WithTimeout(ctx, opts.FetchTimeout)
	defer cancel()
	if _, err := opts.Run.Run(fctx, FetchCmd(opts.Tools.Nix, flake)); err != nil {
		if ctx.Err() == nil && errors.Is(fctx.Err(), context.DeadlineExceeded) {
			return inputsProbe{Why: fmt.Sprintf("%s within %s", what, opts.FetchTimeout)}
		}
		return inputsProbe{Why: what + ": " + nixReason(err, opts.Root)}
	}
	return inputsProbe{OK: true, Why: "the flake's locked inputs were fetched (" + strings.Join(missing, ", ") + ")"}
}

func missingNames(inputs []FlakeInput, invalid []string) []string {
	var out []string
	for _, in := range inputs {
		for _, p := range invalid {
			if p == in.Path {
				out = append(out, in.Name)
				break
			}
		}
	}
	return out
}

func isOrAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

// nixReason reduces a failed Nix command to its error message.
func nixReason(err error, root string) string {
	var xe *execx.Error
	if errors.As(err, &xe) && strings.TrimSpace(xe.Stderr) != "" {
		return ParseNixError(xe.Stderr, root).Message
	}
	return err.Error()
}

// chooseMode settles the host evaluation mode and says which and why, in
// one line. A requested nixos mode is probed too, so that missing inputs
// are one clear failure instead of one slow download per host.
func chooseMode(ctx context.Context, opts Options) (HostMode, string, *Failure) {
	switch opts.HostMode {
	case ModeModule:
		return ModeModule, "module mode, as requested by SOURCEOS_CHECK_HOST_MODE=module", nil
	case ModeNixOS:
		p := probeInputs(ctx, opts)
		if !p.OK {
			return ModeNixOS, "nixos mode, as requested by SOURCEOS_CHECK_HOST_MODE=nixos", &Failure{
				Check: CheckHosts, File: "flake.lock", Subject: "nixos mode",
				Message: "the flake's nixosConfigurations cannot be evaluated: " + p.Why}
		}
		return ModeNixOS, "nixos mode, as requested by SOURCEOS_CHECK_HOST_MODE=nixos", nil
	}
	p := probeInputs(ctx, opts)
	if !p.OK {
		return ModeModule, "module mode, because " + p.Why, nil
	}
	return ModeNixOS, "nixos mode, because " + p.Why, nil
}
