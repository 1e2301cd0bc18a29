package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/socioprophet/sourceos/internal/execx"
)

// NixSandbox is what Nix's configuration says about isolating builders.
type NixSandbox struct {
	// Mode is "true", "false" or "relaxed" (fixed-output and __noChroot
	// derivations outside the sandbox).
	Mode string
	// Fallback: Nix silently builds unsandboxed when the kernel refuses
	// the namespaces it needs.
	Fallback bool
	// BuildUsersGroup is empty when builders run as the Nix process's user.
	BuildUsersGroup string
}

// ShowConfigArgs is the argv (after "nix") that prints the configuration.
func ShowConfigArgs() []string { return []string{"show-config", "--json"} }

// ParseShowConfig reads `nix show-config --json`: every release prints an
// object keyed by setting name whose entries hold the value under "value"
// (older ones printed the bare value).
func ParseShowConfig(data []byte) (NixSandbox, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return NixSandbox{}, fmt.Errorf("parse nix show-config --json: %w", err)
	}
	var sb NixSandbox
	var err error
	if sb.Mode, err = settingString(raw, "sandbox"); err != nil {
		return sb, err
	}
	fallback, err := settingString(raw, "sandbox-fallback")
	if err != nil {
		return sb, err
	}
	sb.Fallback = fallback != "false"
	sb.BuildUsersGroup, _ = settingString(raw, "build-users-group")
	return sb, nil
}

// settingString is a setting's value as a string: true, false, relaxed, a
// group name.
func settingString(raw map[string]json.RawMessage, name string) (string, error) {
	v, ok := raw[name]
	if !ok {
		return "", fmt.Errorf("nix show-config: no %q setting", name)
	}
	var entry struct {
		Value json.RawMessage `json:"value"`
	}
	if json.Unmarshal(v, &entry) == nil && entry.Value != nil {
		v = entry.Value
	}
	var x any
	if err := json.Unmarshal(v, &x); err != nil {
		return "", fmt.Errorf("nix show-config: %s: %w", name, err)
	}
	switch x := x.(type) {
	case bool:
		return fmt.Sprint(x), nil
	case string:
		return x, nil
	}
	return "", fmt.Errorf("nix show-config: %s: unexpected value %s", name, v)
}

// ErrNoSandbox means Nix would run a build outside its sandbox.
var ErrNoSandbox = errors.New("nix would build outside its sandbox")

// Check says why these settings cannot build untrusted code, or nil.
func (sb NixSandbox) Check() error {
	switch {
	case sb.Mode != "true":
		return fmt.Errorf("%w: sandbox = %s (want true; relaxed lets fixed-output and __noChroot derivations out)", ErrNoSandbox, sb.Mode)
	case sb.Fallback:
		return fmt.Errorf("%w when the kernel refuses namespaces: sandbox-fallback = true (want false)", ErrNoSandbox)
	}
	return nil
}

// preflightSandbox refuses to build user-supplied Nix code unless every
// builder runs in Nix's sandbox: its own mount, PID and network namespaces,
// seeing only its inputs, never this process's files, environment or
// memory (docs/threat-model.md).
type preflightSandbox struct{}

func (preflightSandbox) String() string { return "preflight: nix sandbox" }

func (preflightSandbox) Run(ctx context.Context, s *State) error {
	res, err := s.Run.Run(ctx, execx.Cmd{Name: "nix", Args: ShowConfigArgs()})
	if err != nil {
		return err
	}
	sb, err := ParseShowConfig(res.Stdout)
	if err != nil {
		return err
	}
	if err := sb.Check(); err != nil {
		return fmt.Errorf("%w; a custom build runs user-supplied Nix code and needs sandbox = true and sandbox-fallback = false in nix.conf (bash scripts/ensure-tools.sh sets them)", err)
	}
	users := sb.BuildUsersGroup
	if users == "" {
		users = "none: builders run as this user inside the sandbox"
	}
	fmt.Fprintf(s.Stream, "    sandbox = true, sandbox-fallback = false, build users: %s\n", users)
	return nil
}
