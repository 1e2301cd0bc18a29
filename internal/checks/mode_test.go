package checks_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socioprophet/sourceos/internal/catalog"
	"github.com/socioprophet/sourceos/internal/checks"
	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// placeholderKey is the repository hosts' placeholder admin key.
const placeholderKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOBX8vp1Ny+xKrNGv3JcWg4MuA+W/TXJMq3HO5fPAkmn PLACEHOLDER-replace-with-a-real-admin-key"

// fakeNix answers the input probe, and both evaluations with every
// host fact holding, except the overrides given for the nixos
// evaluation.
type fakeNix struct {
	missing   bool   // the locked nixpkgs is not in the store
	fetch     string // "ok", "fail" or "hang" (until the context ends)
	nixosRole string // role the nixos evaluation reports for exit-x86_64
}

const nixpkgsPath = "/nix/store/01635adignbizr4nyz5lpawkrxn4n4g8-source"

func (f fakeNix) respond(ctx context.Context, c execx.Cmd) (execx.Result, error) {
	switch {
	case c.Name == "nix-store":
		if f.missing {
			return execx.Result{Stdout: []byte(nixpkgsPath + "\n")}, nil
		}
		return execx.Result{}, nil
	case slices.Contains(c.Args, "archive") && slices.Contains(c.Args, "--dry-run"):
		return execx.Result{Stdout: []byte(`{"path":"/nix/store/vx8acc8lkx1gf5awsjl5cqj991z0yr3b-source","inputs":{"nixpkgs":{"path":"` + nixpkgsPath + `","inputs":{}}}}`)}, nil
	case slices.Contains(c.Args, "archive"):
		switch f.fetch {
		case "ok":
			return execx.Result{Stdout: []byte(`{}`)}, nil
		case "hang":
			<-ctx.Done()
			return execx.Result{}, &execx.Error{Cmd: c.String(), ExitCode: -1, Err: ctx.Err()}
		}
		stderr := "error: unable to download 'https://api.github.com/repos/NixOS/nixpkgs/tarball/7282cb574e0607e65224d33be8241eae7cfe0979': Couldn't resolve host name (6)\n"
		return execx.Result{}, &execx.Error{Cmd: c.String(), ExitCode: 1, Stderr: stderr, Err: errors.New("exit status 1")}
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
	out := map[string]any{"facts": facts, "access": map[string]any{
		"consoleOnly": false, "sshd": true, "admins": []any{map[string]any{"name": "ops", "sshKeys": []string{placeholderKey}}},
		"users":             []any{map[string]any{"name": "ops", "keys": []string{placeholderKey}}},
		"trustedInterfaces": []string{"lo"}, "meshInterface": "tailscale0",
	}}
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
	case "networking.firewall.interfaces.tailscale0.allowedTCPPorts", "networking.firewall.interfaces.tailscale0.allowedUDPPorts":
		return []int{}
	}
	return nil
}

// recorder runs fakeNix and records the commands.
type recorder struct {
	f     fakeNix
	mu    sync.Mutex
	Calls []execx.Cmd
}

func (r *recorder) Run(ctx context.Context, c execx.Cmd) (execx.Result, error) {
	r.mu.Lock()
	r.Calls = append(r.Calls, c)
	r.mu.Unlock()
	return r.f.respond(ctx, c)
}

func runFake(t *testing.T, f fakeNix, mode checks.HostMode) (*checks.Report, *recorder) {
	t.Helper()
	fake := &recorder{f: f}
	rep, err := checks.Run(context.Background(), checks.Options{
		Root: testrig.RepoRoot(t), Run: fake, HostMode: mode, Checks: []string{checks.CheckHosts},
		FetchTimeout: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return rep, fake
}

func ran(fake *recorder, pred func(execx.Cmd) bool) int {
	n := 0
	for _, c := range fake.Calls {
		if pred(c) {
			n++
		}
	}
	return n
}

func isFetch(c execx.Cmd) bool {
	return slices.Contains(c.Args, "archive") && !slices.Contains(c.Args, "--dry-run")
}

func isNixOSEval(c execx.Cmd) bool {
	return len(c.Args) >= 4 && strings.HasSuffix(c.Args[len(c.Args)-4], "nixos-eval.nix")
}

// Offline, the locked nixpkgs is neither in the store nor fetchable: the
// auto mode says so in one line and evaluates the host modules.
func TestAutoModeFallsBackWhenNixpkgsCannotBeFetched(t *testing.T) {
	rep, fake := runFake(t, fakeNix{missing: true, fetch: "fail"}, checks.ModeAuto)
	want := "module mode, because nixpkgs is not in the Nix store and could not be fetched: unable to download 'https://api.github.com/repos/NixOS/nixpkgs/tarball/7282cb574e0607e65224d33be8241eae7cfe0979': Couldn't resolve host name (6)"
	if rep.HostMode != "module" || rep.Results[0].Note != want {
		t.Errorf("mode %q, note %q\nwant note %q", rep.HostMode, rep.Results[0].Note, want)
	}
	if !rep.OK() {
		t.Errorf("failures: %v", lines(rep))
	}
	if n := ran(fake, isFetch); n != 1 {
		t.Errorf("%d fetch attempts, want 1", n)
	}
	if n := ran(fake, isNixOSEval); n != 0 {
		t.Errorf("%d nixos evaluations in module mode", n)
	}
}

// Inputs already in the store: nixos mode, nothing fetched.
func TestAutoModeUsesInputsInTheStore(t *testing.T) {
	rep, fake := runFake(t, fakeNix{fetch: "fail"}, checks.ModeAuto)
	if rep.HostMode != "nixos" || rep.Results[0].Note != "nixos mode, because the flake's locked inputs are in the Nix store" {
		t.Errorf("mode %q, note %q", rep.HostMode, rep.Results[0].Note)
	}
	if n := ran(fake, isFetch); n != 0 {
		t.Errorf("%d fetch attempts although the inputs are in the store", n)
	}
}

func TestAutoModeEvaluatesNixOSWhenFetched(t *testing.T) {
	rep, fake := runFake(t, fakeNix{missing: true, fetch: "ok", nixosRole: "relay"}, checks.ModeAuto)
	if rep.HostMode != "nixos" || rep.Results[0].Note != "nixos mode, because the flake's locked inputs were fetched (nixpkgs)" {
		t.Fatalf("mode %q, note %q", rep.HostMode, rep.Results[0].Note)
	}
	want := `hosts/exit-x86_64/default.nix:9: exit-x86_64: sourceos.mesh.role: expected "exit", found "relay"`
	if got := lines(rep); len(got) != 1 || got[0] != want {
		t.Errorf("failures %q, want [%q]", got, want)
	}
	for _, c := range fake.Calls {
		if isNixOSEval(c) && !strings.Contains(c.Args[len(c.Args)-1], `"flake":"`+catalog.FlakeRef(testrig.RepoRoot(t))+`"`) {
			t.Errorf("nixos evaluation of the wrong flake: %s", c.Args[len(c.Args)-1])
		}
	}
	if n := ran(fake, isNixOSEval); n != 4 {
		t.Errorf("%d nixos evaluations, want one per host", n)
	}
}

// A fetch that does not finish is cut at the bound and the mode falls back.
func TestAutoModeFetchIsBounded(t *testing.T) {
	rep, _ := runFake(t, fakeNix{missing: true, fetch: "hang"}, checks.ModeAuto)
	want := "module mode, because nixpkgs is not in the Nix store and could not be fetched within 200ms"
	if rep.HostMode != "module" || rep.Results[0].Note != want || !rep.OK() {
		t.Errorf("mode %q, note %q, failures %v", rep.HostMode, rep.Results[0].Note, lines(rep))
	}
}

// Requested nixos mode without the inputs: one failure, no slow
// evaluation per host.
func TestRequestedNixOSModeWithoutInputs(t *testing.T) {
	rep, fake := runFake(t, fakeNix{missing: true, fetch: "fail"}, checks.ModeNixOS)
	got := lines(rep)
	if len(got) != 1 || !strings.HasPrefix(got[0], "flake.lock: nixos mode: the flake's nixosConfigurations cannot be evaluated: nixpkgs is not in the Nix store") {
		t.Errorf("failures %q", got)
	}
	if n := ran(fake, isNixOSEval); n != 0 {
		t.Errorf("%d nixos evaluations without inputs", n)
	}
}

func TestRequestedModeSkipsProbe(t *testing.T) {
	rep, fake := runFake(t, fakeNix{missing: true, fetch: "fail"}, checks.ModeModule)
	if n := ran(fake, func(c execx.Cmd) bool { return slices.Contains(c.Args, "archive") || c.Name == "nix-store" }); n != 0 {
		t.Errorf("probe ran although module mode was requested")
	}
	if rep.Results[0].Note != "module mode, as requested by SOURCEOS_CHECK_HOST_MODE=module" {
		t.Errorf("note %q", rep.Results[0].Note)
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
