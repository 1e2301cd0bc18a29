package checks_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/checks"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// upstreamHosts copies testdata/upstream-flake: hosts shaped like the
// SourceOS hosts tree, whose modules take extra module arguments (self,
// syncdPkg, bootPkg) and define options of sops-nix, a flake input that is
// not available offline.
func upstreamHosts(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	if err := copyPath(filepath.Join(testrig.RepoRoot(t), "testdata", "upstream-flake"), dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

const upstreamFacts = "hosts/facts.json"

// The module-level evaluation loads such hosts offline with the stand-ins
// of their host facts file, and every fact is checked, those that read the
// stand-ins included (packages from self and syncdPkg, the sops secret's
// path from a stub option).
func TestHostsWithExtraModuleArgumentsEvaluateOffline(t *testing.T) {
	tools := realTools(t)
	cases := []struct {
		name string
		edit func(t *testing.T, root string)
		want []string // substrings of failure lines; nil means the hosts pass
	}{
		{"as declared", func(*testing.T, string) {}, nil},
		{"a fact on a stand-in package fails when it differs", func(t *testing.T, r string) {
			edit(t, r, upstreamFacts, `"bootPkg": {"package": "sourceos-boot"}`, `"bootPkg": {"package": "grub"}`)
		}, []string{`hosts/builder-aarch64/default.nix:31: builder-aarch64: sourceos.syncd.sourceosBoot.package: expected package sourceos-boot, found package grub`}},
		{"a stand-in read from self per system", func(t *testing.T, r string) {
			edit(t, r, upstreamFacts, `"aarch64-linux": {"attrs": {
          "meshd": {"package": "meshd"},`, `"aarch64-linux": {"attrs": {
          "meshd": {"package": "meshd-aarch64"},`)
		}, []string{`builder-aarch64: sourceos.mesh.runtime.meshdPackage: expected package meshd, found package meshd-aarch64`}},
		{"an argument without a stand-in", func(t *testing.T, r string) {
			edit(t, r, upstreamFacts, `"syncdPkg": {"package": "sourceos-syncd"},`, ``)
		}, []string{"hosts/builder-aarch64/default.nix: builder-aarch64: module-level evaluation: evaluation failed: module argument `syncdPkg` has no stand-in in the module-level evaluation (declare one in moduleArgs of hosts/facts.json)"}},
		{"a stub argument that a fact reads", func(t *testing.T, r string) {
			edit(t, r, upstreamFacts, `"syncdPkg": {"package": "sourceos-syncd"}`, `"syncdPkg": {"stub": true}`)
		}, []string{"module argument `syncdPkg` is a stub (moduleArgs in hosts/facts.json)"}},
		{"a stub argument nothing reads", func(t *testing.T, r string) {
			edit(t, r, upstreamFacts, `{"path": "sourceos.syncd.package", "package": "sourceos-syncd"},`, ``)
			for _, h := range []string{"canary-x86_64", "stable-x86_64", "exit-x86_64"} {
				edit(t, r, "hosts/"+h+"/default.nix", "    package = syncdPkg;\n", "")
			}
			edit(t, r, upstreamFacts, `"syncdPkg": {"package": "sourceos-syncd"}`, `"syncdPkg": {"stub": true}`)
		}, nil},
		{"no stub option for an option of a module not loaded", func(t *testing.T, r string) {
			edit(t, r, upstreamFacts, `"sops.secrets": {"attrsOf": {"path": "/run/secrets/{name}"}}`, `"sops.placeholder": {"default": {}}`)
		}, []string{
			"hosts/exit-x86_64/default.nix:36: exit-x86_64: module-level evaluation: evaluation failed: attribute 'path' missing",
			`canary-x86_64: sops.secrets.katello-password: expected {"sopsFile":"/etc/sourceos/secrets.yaml","owner":"sourceos-syncd","mode":"0400","path":"/run/secrets/katello-password"}, found {"mode":"0400","owner":"sourceos-syncd","sopsFile":"/etc/sourceos/secrets.yaml"}`,
		}},
		{"a secret's path from the stub option's entry", func(t *testing.T, r string) {
			edit(t, r, upstreamFacts, `"/run/secrets/{name}"`, `"/run/agenix/{name}"`)
		}, []string{`exit-x86_64: sourceos.syncd.katelloPasswordFile: expected "/run/secrets/katello-password", found "/run/agenix/katello-password"`}},
		{"reading an option nobody defines", func(t *testing.T, r string) {
			edit(t, r, "hosts/stable-x86_64/default.nix", `flakeRef = "github:SourceOS-Linux/source-os#stable-x86_64";`,
				`flakeRef = "github:SourceOS-Linux/source-os#" + config.networking.domain;`)
		}, []string{"hosts/stable-x86_64/default.nix:29: stable-x86_64: module-level evaluation: evaluation failed: attribute 'domain' missing"}},
		{"the flake's module is loaded with the host", func(t *testing.T, r string) {
			edit(t, r, "modules/nixos/sourceos-syncd/default.nix", `wantedBy = [ "multi-user.target" ];`, `wantedBy = [ ];`)
		}, []string{`builder-aarch64: systemd.services.sourceos-syncd.wantedBy: expected ["multi-user.target"], found []`}},
		{"a host nobody can log in to", func(t *testing.T, r string) {
			edit(t, r, "hosts/stable-x86_64/default.nix", "sourceos.consoleOnly = true;", "")
		}, []string{`hosts/stable-x86_64/default.nix: stable-x86_64: login: nobody can log in`}},
		{"a host argument replaces the top-level one", func(t *testing.T, r string) {
			edit(t, r, upstreamFacts, `"file": "hosts/exit-x86_64/default.nix",`,
				`"file": "hosts/exit-x86_64/default.nix", "moduleArgs": {"bootPkg": {"package": "exit-boot"}},`)
			edit(t, r, upstreamFacts, `{"path": "sourceos.mesh.role", "equals": "exit"},`,
				`{"path": "sourceos.mesh.role", "equals": "exit"}, {"path": "sourceos.syncd.sourceosBoot.package", "package": "exit-boot"},`)
		}, nil},
		{"an unknown key in a stand-in", func(t *testing.T, r string) {
			edit(t, r, upstreamFacts, `"bootPkg": {"package": "sourceos-boot"}`, `"bootPkg": {"pkg": "sourceos-boot"}`)
		}, []string{`hosts/facts.json: moduleArgs.bootPkg: unknown key "pkg"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := upstreamHosts(t)
			c.edit(t, root)
			rep := run(t, root, tools, checks.CheckHosts)
			got := lines(rep)
			if c.want == nil {
				if !rep.OK() || rep.Results[0].Checked != 4 {
					t.Fatalf("want 4 hosts passing, got %d checked:\n%s", rep.Results[0].Checked, strings.Join(got, "\n"))
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

// The fixture's hosts are shaped like the hosts they stand for: same
// names, same extra arguments, sops secrets.
func TestUpstreamFixtureUsesTheExtraArguments(t *testing.T) {
	root := filepath.Join(testrig.RepoRoot(t), "testdata", "upstream-flake")
	for _, h := range []string{"builder-aarch64", "canary-x86_64", "stable-x86_64", "exit-x86_64"} {
		b, err := os.ReadFile(filepath.Join(root, "hosts", h, "default.nix"))
		if err != nil {
			t.Fatal(err)
		}
		for _, use := range []string{"self.packages.", "syncdPkg", "bootPkg", "sops.secrets.", "config.sops.secrets."} {
			if !strings.Contains(string(b), use) {
				t.Errorf("hosts/%s/default.nix does not use %s", h, use)
			}
		}
	}
}

func TestParseHostFactsModuleSetup(t *testing.T) {
	host := `"h":{"file":"hosts/h/default.nix"}`
	cases := []struct {
		name, doc, wantErr string
	}{
		{"every kind", `{"modules":["modules/m.nix"],"moduleArgs":{"a":{"package":"hello"},"b":{"stub":true},"c":{"value":{"x":[1]}},
			"d":{"attrs":{"packages":{"attrs":{"x86_64-linux":{"attrs":{"p":{"package":"p"}}}}}}},"e":{"value":null}},
			"stubOptions":{"sops.secrets":{"attrsOf":{"path":"/run/secrets/{name}"}},"sops.age.keyFile":{"default":null}},"hosts":{` + host + `}}`, ""},
		{"unknown key in a stand-in", `{"moduleArgs":{"syncdPkg":{"pakage":"x"}},"hosts":{` + host + `}}`, `moduleArgs.syncdPkg: unknown key "pakage"`},
		{"unknown key deep in a stand-in", `{"moduleArgs":{"self":{"attrs":{"packages":{"stub":true,"extra":1}}}},"hosts":{` + host + `}}`,
			`moduleArgs.self.attrs.packages: unknown key "extra"`},
		{"two kinds", `{"moduleArgs":{"self":{"stub":true,"value":1}},"hosts":{` + host + `}}`, "moduleArgs.self: give exactly one of package, value, attrs, stub"},
		{"no kind", `{"moduleArgs":{"self":{}},"hosts":{` + host + `}}`, "moduleArgs.self: give exactly one of"},
		{"stub false", `{"moduleArgs":{"self":{"stub":false}},"hosts":{` + host + `}}`, "moduleArgs.self: stub must be true"},
		{"not a package name", `{"moduleArgs":{"p":{"package":"a b"}},"hosts":{` + host + `}}`, `moduleArgs.p: package "a b" is not a package attribute name`},
		{"reserved argument", `{"moduleArgs":{"pkgs":{"stub":true}},"hosts":{` + host + `}}`, "moduleArgs.pkgs: pkgs is provided by the evaluation itself"},
		{"stand-in not an object", `{"moduleArgs":{"self":true},"hosts":{` + host + `}}`, "moduleArgs.self: json: cannot unmarshal"},
		{"unknown key in a stub option", `{"stubOptions":{"sops.secrets":{"attrsOf":{},"type":"attrs"}},"hosts":{` + host + `}}`, `stubOptions.sops.secrets: unknown key "type"`},
		{"stub option of both kinds", `{"stubOptions":{"a.b":{"attrsOf":{},"default":1}},"hosts":{` + host + `}}`, "stubOptions.a.b: give exactly one of default, attrsOf"},
		{"stub option of no kind", `{"stubOptions":{"a.b":{}},"hosts":{` + host + `}}`, "stubOptions.a.b: give exactly one of default, attrsOf"},
		{"stub option with a bad path", `{"stubOptions":{"a..b":{"default":1}},"hosts":{` + host + `}}`, "stubOptions.a..b: path"},
		{"module outside the repository", `{"modules":["../x.nix"],"hosts":{` + host + `}}`, `modules[0]: "../x.nix" is not a clean path inside the repository`},
		{"absolute module", `{"hosts":{"h":{"file":"f","modules":["/etc/x.nix"]}}}`, `hosts.h.modules[0]: "/etc/x.nix" is not a clean path`},
		{"unknown key in a host's stand-in", `{"hosts":{"h":{"file":"f","moduleArgs":{"a":{"packages":"x"}}}}}`, `hosts.h.moduleArgs.a: unknown key "packages"`},
		{"unknown top-level key", `{"moduleArg":{},"hosts":{` + host + `}}`, `unknown key "moduleArg"`},
	}
	for _, c := range cases {
		_, err := checks.ParseHostFacts([]byte(c.doc))
		if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.wantErr)
		}
	}
}

func TestSetupMergesHostOverTopLevel(t *testing.T) {
	c, err := checks.ParseHostFacts([]byte(`{"modules":["a.nix"],"moduleArgs":{"x":{"package":"top"},"y":{"stub":true}},
		"stubOptions":{"s":{"default":1}},
		"hosts":{"h":{"file":"f","modules":["b.nix","a.nix"],"moduleArgs":{"x":{"package":"host"}},"stubOptions":{"s":{"default":2}}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Setup(c.Hosts["h"])
	if strings.Join(s.Modules, ",") != "a.nix,b.nix" || s.ModuleArgs["x"].Package != "host" || !s.ModuleArgs["y"].Stub ||
		string(s.StubOptions["s"].Default) != "2" {
		t.Errorf("setup %+v", s)
	}
}

// check:contracts over the whole SourceOS-shaped tree, through its own
// catalog and stand-ins, offline: every check passes (the manifests it
// keeps in shapes of its own are left to it, and said so).
func TestUpstreamShapedTreePassesItsContracts(t *testing.T) {
	tools := realTools(t)
	root := upstreamHosts(t)
	rep := run(t, root, tools)
	if !rep.OK() {
		t.Fatalf("the upstream-shaped tree fails its contracts:\n%s", strings.Join(lines(rep), "\n"))
	}
	for _, r := range rep.Results {
		if r.Check == checks.CheckCatalog && r.Checked == 0 {
			t.Error("the catalog was not checked")
		}
		if r.Check == checks.CheckManifests && !strings.Contains(r.Note, "no schemas/channel.schema.json") {
			t.Errorf("manifests note %q", r.Note)
		}
	}
}
