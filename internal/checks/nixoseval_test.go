package checks_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/checks"
	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// nixos-eval.nix, run by real Nix on a flake whose configuration has the
// shape of an evaluated NixOS system (testdata/nixos-standin): facts are
// read from options and, past an option, from its value; the access
// facts come from the configuration's users, sshd and firewall.
func TestNixOSEvaluationReadsOptionsAndAccess(t *testing.T) {
	tools := realTools(t)
	src := filepath.Join(testrig.RepoRoot(t), "internal", "checks", "testdata", "nixos-standin")
	host := t.TempDir()
	b, err := os.ReadFile(filepath.Join(src, "host", "flake.nix"))
	if err != nil {
		t.Fatal(err)
	}
	flake := strings.ReplaceAll(string(b), "@NIXPKGS@", filepath.Join(src, "nixpkgs"))
	if err := os.WriteFile(filepath.Join(host, "flake.nix"), []byte(flake), 0o644); err != nil {
		t.Fatal(err)
	}
	lock := execx.Cmd{Name: testrig.RequireTool(t, "nix"), Args: []string{"flake", "lock", "path:" + host}}
	if _, err := (&execx.Exec{}).Run(context.Background(), lock); err != nil {
		t.Fatal(err)
	}
	files, err := checks.WriteEvalFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	paths := [][]string{
		{"networking", "hostName"}, {"networking", "domain"}, {"networking", "nowhere"},
		{"networking", "firewall", "interfaces", "tailscale0", "allowedTCPPorts"},
		{"networking", "firewall", "interfaces", "wlan0", "allowedTCPPorts"},
		{"sourceos", "mesh", "package"}, {"users", "users", "ops", "extraGroups"},
	}
	cmd, err := checks.NixOSEvalCmd(tools.NixInstantiate, files, checks.NixOSRequest{Flake: "path:" + host, Name: "h", Paths: paths})
	if err != nil {
		t.Fatal(err)
	}
	res, err := (&execx.Exec{}).Run(context.Background(), cmd)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := checks.ParseHostEval(res.Stdout)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`{"path":["networking","hostName"],"defined":true,"value":"h","file":"hosts/h/default.nix"}`,
		`{"path":["networking","domain"],"defined":false}`,
		`{"path":["networking","nowhere"],"defined":false}`,
		`{"path":["networking","firewall","interfaces","tailscale0","allowedTCPPorts"],"defined":true,"value":[9100],"file":"modules/sourceos.nix"}`,
		`{"path":["networking","firewall","interfaces","wlan0","allowedTCPPorts"],"defined":false}`,
		`{"path":["sourceos","mesh","package"],"defined":true,"value":{"package":"tailscale"},"file":"hosts/h/default.nix"}`,
		`{"path":["users","users","ops","extraGroups"],"defined":true,"value":["wheel"],"file":"modules/sourceos.nix"}`,
	}
	for i, f := range ev.Facts {
		got, _ := json.Marshal(f)
		if i >= len(want) || string(got) != want[i] {
			t.Errorf("fact %d: %s", i, got)
		}
	}
	a := ev.Access
	if a == nil {
		t.Fatal("no access facts")
	}
	if len(a.Users) != 1 || a.Users[0].Name != "ops" || len(a.Users[0].Keys) != 1 || string(a.SSHD) != "true" ||
		string(a.ConsoleOnly) != "false" || a.MeshInterface != "tailscale0" || strings.Join(a.TrustedInterfaces, ",") != "lo" ||
		!strings.Contains(string(a.Admins), `"name":"ops"`) || strings.Contains(string(a.Admins), "_module") {
		t.Errorf("access %+v admins %s", a, a.Admins)
	}
	if fails := checks.CheckAccess("h", checks.HostEntry{File: "hosts/h/default.nix"}, a); len(fails) != 0 {
		t.Errorf("access failures: %v", fails)
	}
}
