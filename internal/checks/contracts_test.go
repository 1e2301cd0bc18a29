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

// treeFiles are the parts of the repository the checks read; the mutation
// tests work on a copy of them.
var treeFiles = []string{
	"flake.nix", "catalog.json", "hosts", "modules", "editions", "channels", "builders", "scripts",
	"schemas/channel.schema.json", "schemas/builder.schema.json",
}

// treeCopy copies the repository's tree into a temporary directory.
func treeCopy(t *testing.T) string {
	t.Helper()
	src, dst := testrig.RepoRoot(t), t.TempDir()
	for _, rel := range treeFiles {
		if err := copyPath(filepath.Join(src, rel), filepath.Join(dst, rel)); err != nil {
			t.Fatalf("copy %s: %v", rel, err)
		}
	}
	return dst
}

func copyPath(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		return os.WriteFile(target, b, info.Mode().Perm())
	})
}

// realTools makes nix, nix-instantiate and shellcheck usable (failing under CI=true when missing).
func realTools(t *testing.T) checks.Tools {
	t.Helper()
	testrig.Nix(t)
	return checks.Tools{
		NixInstantiate: testrig.RequireTool(t, "nix-instantiate"),
		Shellcheck:     testrig.RequireTool(t, "shellcheck"),
	}
}

func run(t *testing.T, root string, tools checks.Tools, which ...string) *checks.Report {
	t.Helper()
	rep, err := checks.Run(context.Background(), checks.Options{
		Root: root, Run: &execx.Exec{}, Checks: which, HostMode: checks.ModeModule, Tools: tools,
	})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func lines(rep *checks.Report) []string {
	var out []string
	for _, r := range rep.Results {
		for _, f := range r.Failures {
			out = append(out, f.String())
		}
	}
	return out
}

// edit replaces old with new in a file of the tree, failing if old is absent.
func edit(t *testing.T, root, file, old, new string) {
	t.Helper()
	p := filepath.Join(root, file)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s does not contain %q", file, old)
	}
	if err := os.WriteFile(p, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, root, file, content string) {
	t.Helper()
	p := filepath.Join(root, file)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}

const exitHost = "hosts/exit-x86_64/default.nix"
const exitAdmins = "hosts/exit-x86_64/admins.json"
const roleLine = `sourceos.mesh.role = lib.mkForce "exit";`
const meshLines = `  sourceos.mesh.enable = true;
  sourceos.mesh.role = lib.mkForce "exit";
  sourceos.mesh.package = pkgs.tailscale;`

// TestRepoContracts: the real tree passes every gate (host facts in
// module mode, which is what runs offline).
func TestRepoContracts(t *testing.T) {
	tools := realTools(t)
	rep := run(t, testrig.RepoRoot(t), tools)
	if !rep.OK() {
		t.Fatalf("the repository fails its contracts:\n%s", strings.Join(lines(rep), "\n"))
	}
	if rep.HostMode != string(checks.ModeModule) || len(rep.Results) != len(checks.AllChecks) {
		t.Errorf("mode %q, %d results", rep.HostMode, len(rep.Results))
	}
	for _, r := range rep.Results {
		if r.Checked == 0 && r.Check != checks.CheckWorkflows {
			t.Errorf("check %s looked at nothing", r.Check)
		}
	}
}

// TestMutations changes a copy of the tree one way at a time and runs the
// checks with real Nix, shellcheck and actionlint.
func TestMutations(t *testing.T) {
	tools := realTools(t)
	cases := []struct {
		name  string
		check string
		edit  func(t *testing.T, root string)
		want  []string // substrings of failure lines; nil means the check passes
	}{
		{"unchanged", checks.CheckHosts, func(*testing.T, string) {}, nil},
		{"role relay", checks.CheckHosts, func(t *testing.T, r string) {
			edit(t, r, exitHost, roleLine, `sourceos.mesh.role = "relay";`)
		}, []string{exitHost + `:13: exit-x86_64: sourceos.mesh.role: expected "exit", found "relay"`}},
		{"role missing", checks.CheckHosts, func(t *testing.T, r string) {
			edit(t, r, exitHost, roleLine, "")
		}, []string{`modules/sourceos.nix:34: exit-x86_64: sourceos.mesh.role: expected "exit", found "peer"`}}, // the option's default
		{"plain exit", checks.CheckHosts, func(t *testing.T, r string) {
			edit(t, r, exitHost, roleLine, `sourceos.mesh.role = "exit";`)
		}, nil},
		{"mkDefault exit", checks.CheckHosts, func(t *testing.T, r string) {
			edit(t, r, exitHost, roleLine, `sourceos.mesh.role = lib.mkDefault "exit";`)
		}, nil},
		{"mkOverride exit", checks.CheckHosts, func(t *testing.T, r string) {
			edit(t, r, exitHost, roleLine, `sourceos.mesh.role = lib.mkOverride 10 "exit";`)
		}, nil},
		{"nested attribute sets", checks.CheckHosts, func(t *testing.T, r string) {
			edit(t, r, exitHost, meshLines, `  sourceos = {
    mesh = {
      enable = true;
      role = "exit";
      package = pkgs.tailscale;
    };
  };`)
		}, nil},
		{"nested under mkForce", checks.CheckHosts, func(t *testing.T, r string) {
			edit(t, r, exitHost, meshLines, `  sourceos.mesh = lib.mkForce { enable = true; role = "exit"; package = pkgs.tailscale; };`)
		}, nil},
		{"with lib", checks.CheckHosts, func(t *testing.T, r string) {
			edit(t, r, exitHost, "{ lib, pkgs, ... }:\n{", "{ lib, pkgs, ... }:\nwith lib;\n{")
			edit(t, r, exitHost, roleLine, `sourceos.mesh.role = mkForce "exit";`)
		}, nil},
		{"mkMerge and mkIf", checks.CheckHosts, func(t *testing.T, r string) {
			edit(t, r, exitHost, meshLines, `  sourceos.mesh = lib.mkMerge [
    { enable = true; package = pkgs.tailscale; }
    (lib.mkIf true { role = lib.mkForce "exit"; })
    (lib.mkIf false { role = lib.mkForce "relay"; })
  ];`)
		}, nil},
		{"role under mkIf false", checks.CheckHosts, func(t *testing.T, r string) {
			edit(t, r, exitHost, roleLine, `sourceos.mesh.role = lib.mkIf false "exit";`)
		}, []string{`exit-x86_64: sourceos.mesh.role: expected "exit", found "peer"`}},
		{"role derived from config", checks.CheckHosts, func(t *testing.T, r string) {
			edit(t, r, exitHost, "{ lib, pkgs, ... }:", "{ config, lib, pkgs, ... }:")
			edit(t, r, exitHost, roleLine, `sourceos.mesh.role = lib.mkIf config.sourceos.mesh.enable (lib.mkForce "exit");`)
		}, nil},
		{"profile overrides the host", checks.CheckHosts, func(t *testing.T, r string) {
			edit(t, r, exitHost, roleLine, `sourceos.mesh.role = "exit";`)
			edit(t, r, "modules/profiles/stable.nix", `sourceos.build.channel = "stable";`,
				"sourceos.build.channel = \"stable\";\n  sourceos.mesh.role = lib.mkForce \"peer\";")
			edit(t, r, "modules/profiles/stable.nix", "{ ... }:", "{ lib, ... }:")
		}, []string{`modules/profiles/stable.nix:7: exit-x86_64: sourceos.mesh.role: expected "exit", found "peer"`}},
		{"conflicting definitions", checks.CheckHosts, func(t *testing.T, r string) {
			edit(t, r, "modules/profiles/stable.nix", `sourceos.build.channel = "stable";`,
				"sourceos.build.channel = \"stable\";\n  sourceos.mesh.role = lib.mkForce \"peer\";")
			edit(t, r, "modules/profiles/stable.nix", "{ ... }:", "{ lib, ... }:")
		}, []string{`sourceos.mesh.role: conflicting definitions at the same priority`}},
		{"hostName changed", checks.CheckHosts, func(t *testing.T, r string) {
			edit(t, r, exitHost, `networking.hostName = "exit-x86_64";`, `networking.hostName = "exit-01";`)
		}, []string{exitHost + `:10: exit-x86_64: networking.hostName: expected "exit-x86_64", found "exit-01"`}},
		{"other mesh package", checks.CheckHosts, func(t *testing.T, r string) {
			edit(t, r, exitHost, "pkgs.tailscale", "pkgs.nebula")
		}, []string{`sourceos.mesh.package: expected package tailscale, found package nebula`}},
		{"stable profile not imported", checks.CheckHosts, func(t *testing.T, r string) {
			edit(t, r, exitHost, "../../modules/profiles/stable.nix", "../../modules/profiles/canary.nix")
		}, []string{`exit-x86_64: imports: required module not imported: expected modules/profiles/stable.nix`}},
		{"host evaluation error", checks.CheckHosts, func(t *testing.T, r string) {
			edit(t, r, exitHost, roleLine, `sourceos.mesh.role = lib.mkForce undefinedThing;`)
		}, []string{exitHost + `:13: exit-x86_64: module-level evaluation: evaluation failed: undefined variable 'undefinedThing'`}},
		// Somebody can log in to every host, the mesh reaches declared ports only.
		{"host without admins", checks.CheckHosts, func(t *testing.T, r string) {
			write(t, r, exitAdmins, "[]\n")
		}, []string{exitHost + `:17: exit-x86_64: login: nobody can log in: no user has an SSH key`}},
		{"console-only host without admins", checks.CheckHosts, func(t *testing.T, r string) {
			write(t, r, exitAdmins, "[]\n")
			edit(t, r, exitHost, `sourceos.mesh.enable = true;`, "sourceos.mesh.enable = true;\n  sourceos.consoleOnly = true;")
		}, nil},
		{"admin key that is not a key", checks.CheckHosts, func(t *testing.T, r string) {
			write(t, r, exitAdmins, `[{"name": "ops", "sshKeys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOBX8vp1Ny PLACEHOLDER"]}]`)
		}, []string{
			exitHost + `:17: exit-x86_64: sourceos.admins: [0] (ops): sshKeys[0]: key data is not`,
			`exit-x86_64: users.users.ops.openssh.authorizedKeys.keys[0]: key data is not`,
			`exit-x86_64: login: nobody can log in`,
		}},
		{"admin with a DSA key", checks.CheckHosts, func(t *testing.T, r string) {
			write(t, r, exitAdmins, `[{"name": "ops", "sshKeys": ["ssh-dss AAAAB3NzaC1kc3MAAACBAP ops"]}]`)
		}, []string{`exit-x86_64: sourceos.admins: [0] (ops): sshKeys[0]: DSA keys are not accepted`}},
		{"admin entry with a misspelt key", checks.CheckHosts, func(t *testing.T, r string) {
			write(t, r, exitAdmins, `[{"name": "ops", "sshkeys": []}]`)
		}, []string{`exit-x86_64: module-level evaluation: evaluation failed: attribute 'sshKeys' missing`}}, // as NixOS, which refuses the unknown option
		{"admins from a profile and the host", checks.CheckHosts, func(t *testing.T, r string) {
			write(t, r, exitAdmins, "[]\n")
			edit(t, r, "modules/profiles/stable.nix", `sourceos.build.channel = "stable";`,
				"sourceos.build.channel = \"stable\";\n  sourceos.admins = [ { name = \"fleet\"; sshKeys = [ \""+placeholderKey+"\" ]; } ];")
		}, nil},
		{"sshd off", checks.CheckHosts, func(t *testing.T, r string) {
			edit(t, r, exitHost, `sourceos.mesh.enable = true;`, "sourceos.mesh.enable = true;\n  services.openssh.enable = lib.mkForce false;")
		}, []string{`exit-x86_64: login: nobody can log in: users have SSH keys but services.openssh.enable is not true`}},
		{"host trusts the mesh interface", checks.CheckHosts, func(t *testing.T, r string) {
			edit(t, r, exitHost, `sourceos.mesh.enable = true;`, "sourceos.mesh.enable = true;\n  networking.firewall.trustedInterfaces = [ \"tailscale0\" ];")
		}, []string{exitHost + `:13: exit-x86_64: networking.firewall.trustedInterfaces: the mesh interface tailscale0 is trusted`}},
		{"the sourceos module trusts the mesh interface", checks.CheckHosts, func(t *testing.T, r string) {
			edit(t, r, "modules/sourceos.nix", "      # Mesh peers reach the ports the host declares, not the whole host.\n",
				"      networking.firewall.trustedInterfaces = [ \"tailscale0\" ];\n")
		}, []string{
			`exit-x86_64: networking.firewall.trustedInterfaces: the mesh interface tailscale0 is trusted`,
			`stable-x86_64: networking.firewall.trustedInterfaces: the mesh interface tailscale0 is trusted`,
			`canary-x86_64: networking.firewall.trustedInterfaces: the mesh interface tailscale0 is trusted`,
		}},
		{"exit node opens a mesh port", checks.CheckHosts, func(t *testing.T, r string) {
			edit(t, r, exitHost, `sourceos.mesh.enable = true;`, "sourceos.mesh.enable = true;\n  sourceos.mesh.allowedTCPPorts = [ 9100 ];")
		}, []string{`exit-x86_64: networking.firewall.interfaces.tailscale0.allowedTCPPorts: expected [], found [9100]`}},
		{"host without contract", checks.CheckHosts, func(t *testing.T, r string) {
			write(t, r, "hosts/new-host/default.nix", "{ ... }: { networking.hostName = \"new-host\"; }\n")
		}, []string{`hosts/facts.json: new-host: host directory hosts/new-host/ has no entry in hosts/facts.json`}},

		{"script with unused variable", checks.CheckShell, func(t *testing.T, r string) {
			write(t, r, "scripts/deploy-probe.sh", "#!/usr/bin/env bash\nset -eu\necho start\nPROBE=1\n")
		}, []string{`scripts/deploy-probe.sh:4: SC2034 (warning): PROBE appears unused`}},
		{"script with reasoned disable", checks.CheckShell, func(t *testing.T, r string) {
			write(t, r, "scripts/deploy-probe.sh", "#!/usr/bin/env bash\nset -eu\necho start\n# shellcheck disable=SC2034  # diagnostic probe, read in a debugger\nPROBE=1\n")
		}, nil},
		{"script with unreasoned disable", checks.CheckShell, func(t *testing.T, r string) {
			write(t, r, "scripts/deploy-probe.sh", "#!/usr/bin/env bash\nset -eu\necho start\n# shellcheck disable=SC2034\nPROBE=1\n")
		}, []string{`scripts/deploy-probe.sh:4: shellcheck directive: a disable directive needs a reason`}},
		{"extensionless script found by shebang", checks.CheckShell, func(t *testing.T, r string) {
			write(t, r, "tools/run", "#!/bin/sh\necho start\nunused=1\n")
		}, []string{`tools/run:3: SC2034`}},

		{"channel field of the wrong type", checks.CheckManifests, func(t *testing.T, r string) {
			edit(t, r, "channels/stable.json", `"capabilities": [`, `"capabilities": "uefi-boot", "was": [`)
		}, []string{`channels/stable.json:3: field capabilities: got string, want array`, `additional properties 'was' not allowed`}},
		{"channel field missing", checks.CheckManifests, func(t *testing.T, r string) {
			edit(t, r, "channels/dev.json", `"source_rev": "refs/heads/main"`, `"source_revision": "refs/heads/main"`)
		}, []string{`channels/dev.json:1: (document): missing property 'source_rev'`}},
		{"channel value out of pattern", checks.CheckManifests, func(t *testing.T, r string) {
			edit(t, r, "channels/candidate.json", `"sourceos-edge-iso",`, `"sourceos edge iso",`)
		}, []string{`channels/candidate.json:13: field artifact_set.3: 'sourceos edge iso' does not match pattern`}},
		{"channel ships an artifact the catalog lacks", checks.CheckCatalog, func(t *testing.T, r string) {
			edit(t, r, "channels/candidate.json", `"sourceos-edge-iso",`, `"sourceos-kiosk-iso",`)
		}, []string{`channels/candidate.json:13: artifact_set: sourceos-kiosk-iso is not an artifact of the catalog`,
			`channels/candidate.json:9: artifact_set: the catalog ships sourceos-edge-iso on channel candidate but the manifest does not list it`}},
		{"catalog no longer ships an artifact on a channel", checks.CheckCatalog, func(t *testing.T, r string) {
			edit(t, r, "catalog.json", `"channels": ["stable", "candidate", "dev"]`, `"channels": ["candidate", "dev"]`)
		}, []string{`channels/stable.json:10: artifact_set: the catalog does not ship sourceos-desktop-iso on channel stable`}},
		{"catalog naming an edition it lacks", checks.CheckCatalog, func(t *testing.T, r string) {
			edit(t, r, "catalog.json", `"editions": ["desktop", "server", "edge"]`, `"editions": ["desktop", "server", "edge", "kiosk"]`)
		}, []string{`catalog.json: catalog`, `no edition "kiosk" in the catalog`}},
		{"channel named unlike its file", checks.CheckManifests, func(t *testing.T, r string) {
			edit(t, r, "channels/candidate.json", `"channel": "candidate"`, `"channel": "dev"`)
		}, []string{`channels/candidate.json:2: field channel: must equal the file's base name: expected "candidate", found "dev"`}},
		{"channel manifest not JSON", checks.CheckManifests, func(t *testing.T, r string) {
			write(t, r, "channels/dev.json", "{\n  \"channel\": \"dev\",\n  \"capabilities\": [\"a\",]\n}\n")
		}, []string{`channels/dev.json:3: invalid JSON`}},
		{"builder for a missing host", checks.CheckManifests, func(t *testing.T, r string) {
			edit(t, r, "builders/canary-x86_64.json", `"host_config": "canary-x86_64"`, `"host_config": "canary-riscv64"`)
		}, []string{`builders/canary-x86_64.json:7: field host_config: names no host: expected hosts/canary-riscv64/default.nix, found none`}},
		{"builder on a channel without manifest", checks.CheckManifests, func(t *testing.T, r string) {
			if err := os.Remove(filepath.Join(r, "channels/dev.json")); err != nil {
				t.Fatal(err)
			}
		}, []string{`builders/canary-x86_64.json:5: field channel: names no channel manifest: expected channels/dev.json`}},
		{"builder system unlike its host", checks.CheckManifests, func(t *testing.T, r string) {
			edit(t, r, "builders/builder-aarch64.json", `"system": "aarch64-linux"`, `"system": "x86_64-linux"`)
		}, []string{`builders/builder-aarch64.json:3: field system: must match the system of host builder-aarch64: expected "aarch64-linux", found "x86_64-linux"`}},

		{"nix syntax error", checks.CheckNix, func(t *testing.T, r string) {
			edit(t, r, "modules/profiles/builder.nix", "boot.tmp.cleanOnBoot = true;", "boot.tmp.cleanOnBoot = ;")
		}, []string{`modules/profiles/builder.nix:5: expected a Nix expression that parses, found syntax error, unexpected ';'`}},

		{"workflow passes", checks.CheckWorkflows, func(t *testing.T, r string) {
			write(t, r, ".github/workflows/ci.yml", workflow(""))
		}, nil},
		{"workflow with an unknown action input", checks.CheckWorkflows, func(t *testing.T, r string) {
			write(t, r, ".github/workflows/ci.yml", workflow("        with:\n          not-an-input: x\n"))
		}, []string{`.github/workflows/ci.yml:12: action: input "not-an-input" is not defined in action "actions/checkout@v4"`}},
		{"workflow run script with a shellcheck warning", checks.CheckWorkflows, func(t *testing.T, r string) {
			write(t, r, ".github/workflows/ci.yml", workflow("")+"      - run: |\n          unused=1\n          echo done\n")
		}, []string{`.github/workflows/ci.yml:12: shellcheck: shellcheck reported issue in this script: SC2034`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := treeCopy(t)
			c.edit(t, root)
			rep := run(t, root, tools, c.check)
			got := lines(rep)
			if c.want == nil {
				if !rep.OK() {
					t.Fatalf("want pass, got:\n%s", strings.Join(got, "\n"))
				}
				return
			}
			for _, w := range c.want {
				if !containsLine(got, w) {
					t.Errorf("no failure line contains %q; got:\n%s", w, strings.Join(got, "\n"))
				}
			}
		})
	}
}

func workflow(with string) string {
	return "name: ci\n" +
		"on: push\n" +
		"permissions:\n" +
		"  contents: read\n" +
		"jobs:\n" +
		"  build:\n" +
		"    runs-on: ubuntu-latest\n" +
		"    steps:\n" +
		"      - uses: actions/checkout@v4\n" +
		"        with:\n" +
		"          fetch-depth: 1\n" + strings.Replace(with, "        with:\n", "", 1)
}

func containsLine(lines []string, sub string) bool {
	for _, l := range lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

// TestAllChecksReportTogether: failures of several checks come out of one
// run, and Main turns them into an error after writing every line.
func TestAllChecksReportTogether(t *testing.T) {
	tools := realTools(t)
	root := treeCopy(t)
	edit(t, root, exitHost, roleLine, `sourceos.mesh.role = "relay";`)
	write(t, root, "scripts/deploy-probe.sh", "#!/usr/bin/env bash\necho start\nPROBE=1\n")
	edit(t, root, "channels/stable.json", `"channel": "stable"`, `"channel": 7`)
	var out strings.Builder
	err := checks.Main(context.Background(), checks.MainOptions{
		Options: checks.Options{Root: root, Run: &execx.Exec{}, HostMode: checks.ModeModule, Tools: tools},
		Out:     &out,
	})
	var fe *checks.FailedError
	if !errorsAs(err, &fe) || fe.Failed != 3 {
		t.Fatalf("err = %v, want 3 failures; report:\n%s", err, out.String())
	}
	for _, w := range []string{"== hosts: 4 checked, 1 failed", "== shell:", "== manifests:", "found \"relay\"", "SC2034", "field channel", "contracts: 3 failures in 3 of 6 checks"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("report lacks %q:\n%s", w, out.String())
		}
	}
	out.Reset()
	_ = checks.Main(context.Background(), checks.MainOptions{
		Options: checks.Options{Root: root, Run: &execx.Exec{}, HostMode: checks.ModeModule, Tools: tools, Checks: []string{checks.CheckHosts}},
		JSON:    true, Out: &out,
	})
	var rep checks.Report
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil || rep.Failed != 1 || rep.HostMode != "module" {
		t.Errorf("JSON report: %v %+v", err, rep)
	}
}
