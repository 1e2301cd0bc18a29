package testrig

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// Attr returns the installable for a package attribute of the fixture flake,
// e.g. Attr(t, "sourceos-desktop-system").
func Attr(t testing.TB, name string) string {
	t.Helper()
	return FixtureFlake(t) + "#packages.x86_64-linux." + name
}

// Build builds installables with real Nix and returns their output paths in
// order (one nix call each: nix build --json does not keep the order). It
// fails the test (with Nix's log) when the build fails.
func Build(t testing.TB, installables ...string) []string {
	t.Helper()
	paths := make([]string, 0, len(installables))
	for _, in := range installables {
		paths = append(paths, build1(t, in))
	}
	return paths
}

func build1(t testing.TB, installable string) string {
	t.Helper()
	nix := Nix(t)
	args := []string{"build", "--no-link", "--json", installable}
	cmd := exec.Command(nix, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("nix %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var res []struct {
		Outputs map[string]string `json:"outputs"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("parse nix build --json: %v\n%s", err, out)
	}
	if len(res) != 1 || res[0].Outputs["out"] == "" {
		t.Fatalf("nix build --json %s: unexpected output %s", installable, out)
	}
	return res[0].Outputs["out"]
}

// Closure returns the runtime closure of paths according to real Nix.
func Closure(t testing.TB, paths ...string) []string {
	t.Helper()
	nix := Nix(t)
	args := append([]string{"path-info", "--recursive"}, paths...)
	out, err := exec.Command(nix, args...).Output()
	if err != nil {
		t.Fatalf("nix path-info: %v", err)
	}
	return strings.Fields(string(out))
}
