package checks_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/catalog"
	"github.com/socioprophet/sourceos/internal/checks"
	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// fakeNix answers the probe, and both evaluations with every contract fact
// holding, except the overrides given for the nixos evaluation.
type fakeNix struct {
	probeFails bool
	nixosRole  string // role the nixos evaluation reports for exit-x86_64
}

func (f fakeNix) respond(c execx.Cmd) (execx.Result, error) {
	if slices.Contains(c.Args, "metadata") {
		if f.probeFails {
			return execx.Result{Stderr: []byte("error: unable to download 'https://api.github.com/repos/NixOS/nixpkgs/commits/nixos-25.05': Couldn't resolve host name (6)\n")},
				execx.Failf("exit status 1")
		}
		return execx.Result{Stdout: []byte(`{}`)}, nil
	}
	var req struct {
		Name  string     `json:"name"`
		Paths [][]string `json:"paths"`
	}
	if err := json.Unmarshal([]byte(c.Args[len(c.Args)-1]), &req); err != nil {
		return execx.Result{}, err
	}
	nixos := strings.HasSuffix(c.Args[len(c.Args)-4], "nixos-eval.nix")
	facts := []map[string]any{}
	for _, p := range req.Paths {
		facts = append(facts, map[string]any{"path": p, "defined": true, "value": goodValue(req.Name, p, nixos, f.nixosRole),
			"file": "hosts/" + req.Name + "/default.nix", "line": 9})
	}
	out := map[string]any{"facts": facts}
	if !nixos {
		out["imports"] = []string{"modules/profiles/stable.nix", "modules/profiles/canary.nix", "modules/profiles/builder.nix"}
	}
	b, _ := json.Marshal(out)
	return execx.Result{Stdout: b}, nil
}

func goodValue(host string, p []string, nixos bool, nixosRole string) any {
	switch strings.Join(p, ".") {
	case "networking.hostName":
		return host
	case "sourceos.mesh.role":
		if nixos && nixosRole != "" {
			return nixosRole
		}
		return "exit"
	case "sourceos.mesh.enable":
		return true
	case "sourceos.mesh.package":
		return map[string]string{"package": "tailscale"}
	case "sourceos.build.role":
		return "builder"
	case "sourceos.build.channel":
		if host == "canary-x86_64" {
			return "dev"
		}
		return "stable"
	}
	return nil
}

func runFake(t *testing.T, f fakeNix, mode checks.HostMode) (*checks.Report, *execx.Fake) {
	t.Helper()
	fake := &execx.Fake{Respond: f.respond}
	rep, err := checks.Run(context.Background(), checks.Options{
		Root: testrig.RepoRoot(t), Run: fake, HostMode: mode, Checks: []string{checks.CheckHosts},
	})
	if err != nil {
		t.Fatal(err)
	}
	return rep, fake
}

func TestAutoModeFallsBackWhenNixpkgsIsMissing(t *testing.T) {
	rep, fake := runFake(t, fakeNix{probeFails: true}, checks.ModeAuto)
	if rep.HostMode != "module" || !strings.Contains(rep.Results[0].Note, "the flake could not be fetched: unable to download") {
		t.Errorf("mode %q, note %q", rep.HostMode, rep.Results[0].Note)
	}
	if !rep.OK() {
		t.Errorf("failures: %v", lines(rep))
	}
	for _, c := range fake.Commands() {
		if strings.Contains(c, "nixos-eval.nix") {
			t.Errorf("nixos evaluation ran in module mode: %s", c)
		}
	}
}

func TestAutoModeEvaluatesNixOSWhenAvailable(t *testing.T) {
	rep, fake := runFake(t, fakeNix{nixosRole: "relay"}, checks.ModeAuto)
	if rep.HostMode != "nixos" {
		t.Fatalf("mode %q", rep.HostMode)
	}
	want := `hosts/exit-x86_64/default.nix:9: exit-x86_64: sourceos.mesh.role: expected "exit", found "relay"`
	if got := lines(rep); len(got) != 1 || got[0] != want {
		t.Errorf("failures %q, want [%q]", got, want)
	}
	var nixosEvals int
	for _, c := range fake.Calls {
		if strings.HasSuffix(c.Args[len(c.Args)-4], "nixos-eval.nix") {
			nixosEvals++
			if !strings.Contains(c.Args[len(c.Args)-1], `"flake":"`+catalog.FlakeRef(testrig.RepoRoot(t))+`"`) {
				t.Errorf("nixos evaluation of the wrong flake: %s", c.Args[len(c.Args)-1])
			}
		}
	}
	if nixosEvals != 4 {
		t.Errorf("%d nixos evaluations, want one per host", nixosEvals)
	}
}

func TestRequestedModeSkipsProbe(t *testing.T) {
	_, fake := runFake(t, fakeNix{probeFails: true}, checks.ModeModule)
	for _, c := range fake.Commands() {
		if strings.Contains(c, "metadata") {
			t.Errorf("probe ran although module mode was requested: %s", c)
		}
	}
}

func TestUnknownCheck(t *testing.T) {
	_, err := checks.Run(context.Background(), checks.Options{Root: ".", Run: &execx.Fake{}, Checks: []string{"spelling"}})
	if err == nil || !strings.Contains(err.Error(), `unknown check "spelling"`) {
		t.Errorf("err = %v", err)
	}
}

// TestNixOSTreeIsParsed: the flake, the editions (custom included), hosts
// and modules are among the files the nix check parses.
func TestNixOSTreeIsParsed(t *testing.T) {
	files, err := checks.NixFiles(testrig.RepoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"flake.nix", "editions/custom/flake.nix", "editions/desktop/default.nix",
		"editions/server/default.nix", "editions/edge/default.nix", "modules/sourceos.nix",
		"modules/profiles/stable.nix", "hosts/exit-x86_64/default.nix", "hosts/builder-aarch64/default.nix"} {
		if !slices.Contains(files, want) {
			t.Errorf("%s is not checked", want)
		}
	}
}
