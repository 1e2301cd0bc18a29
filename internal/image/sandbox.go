package image

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/nixstore"
)

// NixSandbox is what Nix's configuration says about isolating builders and
// about what Nix itself does with their outputs.
type NixSandbox struct {
	// Mode is "true", "false" or "relaxed" (fixed-output and __noChroot
	// derivations outside the sandbox).
	Mode string
	// Fallback: Nix silently builds unsandboxed when the kernel refuses
	// the namespaces it needs.
	Fallback bool
	// BuildUsersGroup is empty when builders run as the Nix process's user.
	BuildUsersGroup string
	// PostBuildHook runs after every build with its outputs (e.g. an
	// upload to a cache); SecretKeyFiles sign every path Nix builds.
	PostBuildHook, SecretKeyFiles string
}

// ParseShowConfig reads `nix show-config --json` (nixstore.ShowConfigArgs).
func ParseShowConfig(data []byte) (NixSandbox, error) {
	settings, err := nixstore.ParseSettings(data)
	if err != nil {
		return NixSandbox{}, err
	}
	var sb NixSandbox
	if _, ok := settings["sandbox"]; !ok {
		return sb, errors.New("nix show-config: no \"sandbox\" setting")
	}
	fields := []struct {
		name string
		into *string
	}{{"sandbox", &sb.Mode}, {"build-users-group", &sb.BuildUsersGroup},
		{"post-build-hook", &sb.PostBuildHook}, {"secret-key-files", &sb.SecretKeyFiles}}
	for _, f := range fields {
		if *f.into, err = settings.String(f.name); err != nil {
			return sb, err
		}
	}
	fallback, err := settings.String("sandbox-fallback")
	if err != nil {
		return sb, err
	}
	sb.Fallback = fallback != "false"
	return sb, nil
}

// ErrNoSandbox means Nix would run a build outside its sandbox.
var ErrNoSandbox = errors.New("nix would build outside its sandbox")

// ErrNixPublishes means Nix's own configuration would sign or push what a
// build produced.
var ErrNixPublishes = errors.New("nix would sign or push what user code builds")

// Check says why these settings cannot build untrusted code, or nil.
func (sb NixSandbox) Check() error {
	switch {
	case sb.Mode != "true":
		return fmt.Errorf("%w: sandbox = %s (want true; relaxed lets fixed-output and __noChroot derivations out)", ErrNoSandbox, sb.Mode)
	case sb.Fallback:
		return fmt.Errorf("%w when the kernel refuses namespaces: sandbox-fallback = true (want false)", ErrNoSandbox)
	case strings.TrimSpace(sb.PostBuildHook) != "":
		return fmt.Errorf("%w: post-build-hook = %s runs with every output", ErrNixPublishes, sb.PostBuildHook)
	case strings.TrimSpace(sb.SecretKeyFiles) != "":
		return fmt.Errorf("%w: secret-key-files is set, so Nix signs every path it builds", ErrNixPublishes)
	}
	return nil
}

// preflightSandbox refuses to build user-supplied Nix code unless every
// builder runs in Nix's sandbox (its own mount, PID and network namespaces,
// seeing only its inputs, never this process's files, environment or
// memory) and Nix itself neither signs nor pushes what it builds
// (docs/threat-model.md).
type preflightSandbox struct{}

func (preflightSandbox) String() string { return "preflight: nix sandbox" }

func (preflightSandbox) Run(ctx context.Context, s *State) error {
	res, err := s.Run.Run(ctx, execx.Cmd{Name: "nix", Args: nixstore.ShowConfigArgs()})
	if err != nil {
		return err
	}
	sb, err := ParseShowConfig(res.Stdout)
	if err != nil {
		return err
	}
	if err := sb.Check(); err != nil {
		return fmt.Errorf("%w; a custom build runs user-supplied Nix code: it needs sandbox = true and sandbox-fallback = false, and no post-build-hook or secret-key-files, in nix.conf and NIX_CONFIG (bash scripts/ensure-tools.sh sets the sandbox)", err)
	}
	users := sb.BuildUsersGroup
	if users == "" {
		users = "none: builders run as this user inside the sandbox"
	}
	fmt.Fprintf(s.Stream, "    sandbox = true, sandbox-fallback = false, build users: %s\n", users)
	return nil
}
