package image

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// BuildArgs is the argv (after "nix") that builds one installable and prints
// its output paths as JSON. `nix build --json` works from Nix 2.8 on (2.8
// has no --print-out-paths); -L streams the build log prefixed by the
// derivation name. The lock file flag of LockArgs comes first, so no build
// resolves an input anew.
func BuildArgs(installable string, extra ...string) []string {
	args := []string{"build", "--json", "--no-link", "--print-build-logs"}
	args = append(args, LockArgs(extra)...)
	args = append(args, extra...)
	return append(args, installable)
}

// lockFlags are the nix flags that decide what happens to flake.lock.
var lockFlags = []string{"--no-update-lock-file", "--no-write-lock-file", "--update-input", "--recreate-lock-file", "--commit-lock-file"}

// LockArgs is how a build with the extra arguments extra treats flake.lock:
//   - a build of the flake itself must match its committed flake.lock:
//     --no-update-lock-file makes a stale or missing pin an error instead
//     of a silent re-resolution;
//   - a build that overrides an input (the custom build composes a
//     directory with no lock file and passes --override-input sourceos)
//     must lock in memory only: --no-write-lock-file. Its other inputs
//     follow the overridden flake's own flake.lock (nixpkgs follows
//     sourceos/nixpkgs), so they stay pinned.
//
// Extra arguments that already choose (one of lockFlags) are left alone.
func LockArgs(extra []string) []string {
	for _, a := range extra {
		if slices.Contains(lockFlags, a) {
			return nil
		}
	}
	if slices.Contains(extra, "--override-input") {
		return []string{"--no-write-lock-file"}
	}
	return []string{"--no-update-lock-file"}
}

// ParseBuildJSON returns the "out" path of the single derivation that
// `nix build --json` printed.
func ParseBuildJSON(data []byte) (string, error) {
	var res []struct {
		DrvPath string            `json:"drvPath"`
		Outputs map[string]string `json:"outputs"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		return "", fmt.Errorf("parse nix build --json: %w (output %q)", err, clip(data))
	}
	if len(res) != 1 {
		return "", fmt.Errorf("nix build --json: want 1 result, got %d", len(res))
	}
	out := res[0].Outputs["out"]
	if !strings.HasPrefix(out, "/nix/store/") {
		return "", fmt.Errorf("nix build --json: no out path in %q", clip(data))
	}
	return out, nil
}

func clip(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}
