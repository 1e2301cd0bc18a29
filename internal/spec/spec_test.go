package spec_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/spec"
)

const validSpec = `{
  "edition": "server", "arch": "x86_64", "hostname": "web-01",
  "packages": ["htop", "python3Packages.requests"],
  "services": ["openssh"],
  "users": [{"name": "alice", "groups": ["wheel", "docker"]}]
}`

// editions are the custom editions of the repository's catalog.
var editions = []string{"desktop", "server", "edge"}

func parse(t *testing.T, js string, opts spec.Options) (*spec.Spec, error) {
	t.Helper()
	if opts.Editions == nil {
		opts.Editions = editions
	}
	return spec.Parse(strings.NewReader(js), opts)
}

func TestValidSpec(t *testing.T) {
	s, err := parse(t, validSpec, spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Hostname != "web-01" || len(s.Users) != 1 || s.Users[0].Groups[1] != "docker" {
		t.Fatalf("parsed %+v", s)
	}
}

// Each case breaks one rule; the error must name the field, quote the value
// and state the rule.
func TestInvalidSpecsNameFieldValueAndRule(t *testing.T) {
	cases := []struct {
		name, js, field, value, rule string
	}{
		{"unknown field", `{"edition":"server","arch":"x86_64","hostname":"a","root":true}`, "root", "root", "unknown field"},
		{"wrong case key", `{"Edition":"server","arch":"x86_64","hostname":"a"}`, "Edition", "Edition", "case-sensitive"},
		{"duplicate key", `{"edition":"server","edition":"desktop","arch":"x86_64","hostname":"a"}`, "edition", "edition", "given twice"},
		{"bad edition", `{"edition":"gaming","arch":"x86_64","hostname":"a"}`, "edition", "gaming", "one of desktop, server, edge"},
		{"bad arch", `{"edition":"edge","arch":"riscv64","hostname":"a"}`, "arch", "riscv64", "one of x86_64, aarch64"},
		{"hostname upper", `{"edition":"edge","arch":"x86_64","hostname":"Web"}`, "hostname", "Web", "RFC 1123"},
		{"hostname empty", `{"edition":"edge","arch":"x86_64","hostname":""}`, "hostname", "", "RFC 1123"},
		{"hostname dash", `{"edition":"edge","arch":"x86_64","hostname":"-a"}`, "hostname", "-a", "RFC 1123"},
		{"package quote", `{"edition":"edge","arch":"x86_64","hostname":"a","packages":["htop\""]}`, "packages[0]", `htop\"`, "attribute path"},
		{"package dup", `{"edition":"edge","arch":"x86_64","hostname":"a","packages":["htop","htop"]}`, "packages[1]", "htop", "listed twice"},
		{"service", `{"edition":"edge","arch":"x86_64","hostname":"a","services":["telnet"]}`, "services[0]", "telnet", "one of openssh, docker"},
		{"user reserved", `{"edition":"edge","arch":"x86_64","hostname":"a","users":[{"name":"root"}]}`, "users[0].name", "root", "system account"},
		{"user group", `{"edition":"edge","arch":"x86_64","hostname":"a","users":[{"name":"bob","groups":["shadow"]}]}`, "users[0].groups[0]", "shadow", "one of wheel"},
		{"user unknown key", `{"edition":"edge","arch":"x86_64","hostname":"a","users":[{"name":"bob","uid":0}]}`, "users[0].uid", "uid", "unknown field"},
		{"snippet not allowed", `{"edition":"edge","arch":"x86_64","hostname":"a","moduleSnippet":"{ }"}`, "moduleSnippet", "{ }", "SOURCEOS_ALLOW_MODULE_SNIPPET"},
		{"wrong type", `{"edition":1,"arch":"x86_64","hostname":"a"}`, "(spec)", "edition", "JSON object"},
		{"trailing", `{"edition":"edge","arch":"x86_64","hostname":"a"} {}`, "(spec)", "trailing", "exactly one"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parse(t, c.js, spec.Options{})
			var ve *spec.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("want ValidationError, got %v", err)
			}
			msg := err.Error()
			for _, want := range []string{c.field + ":", c.value, c.rule} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q lacks %q", msg, want)
				}
			}
		})
	}
}

func TestEveryErrorReportedAtOnce(t *testing.T) {
	_, err := parse(t, `{"edition":"x","arch":"y","hostname":"Z","services":["ftp"]}`, spec.Options{})
	var ve *spec.ValidationError
	if !errors.As(err, &ve) || len(ve.Errors) != 4 {
		t.Fatalf("want 4 errors, got %v", err)
	}
}

// Injection attempts in every string field must be refused.
func TestHostileValuesRefused(t *testing.T) {
	hostile := []string{
		`a"; system.activationScripts.x = "rm -rf /`,
		"${builtins.readFile /etc/shadow}",
		"a\nb", "a;b", "a b", "'' + x + ''", `\`,
		strings.Repeat("a", 300),
		"аdmin",      // Cyrillic a
		"ｈｔｏｐ",       // full-width
		"htop\u200b", // zero-width space
		"../../etc", "/nix/store/abc-x", "<nixpkgs>", "htop.${x}", "a.b.c.d.e.f.g",
	}
	fields := map[string]func(v string) map[string]any{
		"hostname": func(v string) map[string]any { return base(map[string]any{"hostname": v}) },
		"package":  func(v string) map[string]any { return base(map[string]any{"packages": []string{v}}) },
		"service":  func(v string) map[string]any { return base(map[string]any{"services": []string{v}}) },
		"user":     func(v string) map[string]any { return base(map[string]any{"users": []any{map[string]any{"name": v}}}) },
		"group": func(v string) map[string]any {
			return base(map[string]any{"users": []any{map[string]any{"name": "bob", "groups": []string{v}}}})
		},
		"edition": func(v string) map[string]any { return base(map[string]any{"edition": v}) },
		"arch":    func(v string) map[string]any { return base(map[string]any{"arch": v}) },
	}
	for fname, mk := range fields {
		for _, v := range hostile {
			if fname == "package" && v == "a.b.c.d.e.f.g" {
				continue // covered below: too deep
			}
			js, _ := json.Marshal(mk(v))
			if _, err := spec.Parse(bytes.NewReader(js), spec.Options{}); !spec.IsValidation(err) {
				t.Errorf("%s=%q accepted (err %v)", fname, v, err)
			}
		}
	}
	js, _ := json.Marshal(base(map[string]any{"packages": []string{"a.b.c.d.e.f.g"}}))
	if _, err := spec.Parse(bytes.NewReader(js), spec.Options{}); err == nil {
		t.Error("six-level attribute path accepted")
	}
}

func base(over map[string]any) map[string]any {
	m := map[string]any{"edition": "server", "arch": "x86_64", "hostname": "host"}
	for k, v := range over {
		m[k] = v
	}
	return m
}

func TestLongValueIsCutInErrors(t *testing.T) {
	long := strings.Repeat("x", 5000)
	js, _ := json.Marshal(base(map[string]any{"hostname": long}))
	_, err := spec.Parse(bytes.NewReader(js), spec.Options{})
	if err == nil || len(err.Error()) > 400 || !strings.Contains(err.Error(), "5000 bytes") {
		t.Fatalf("error not cut: %d bytes", len(err.Error()))
	}
}

func TestSpecTooLarge(t *testing.T) {
	big := `{"edition":"server","arch":"x86_64","hostname":"a","packages":["` + strings.Repeat("a", spec.MaxSpecBytes) + `"]}`
	if _, err := parse(t, big, spec.Options{}); !spec.IsValidation(err) || !strings.Contains(err.Error(), "at most") {
		t.Fatalf("got %v", err)
	}
}

// The generated Nix code is the template byte for byte whatever the spec;
// the spec reaches Nix only as JSON data, which decodes back to the spec.
func TestAcceptedSpecNeverChangesNixCode(t *testing.T) {
	template := []byte("{ outputs = _: { }; }\n")
	specs := []string{validSpec,
		`{"edition":"desktop","arch":"aarch64","hostname":"x","packages":["a-b_c"]}`,
		`{"edition":"edge","arch":"x86_64","hostname":"0"}`}
	for _, js := range specs {
		s, err := parse(t, js, spec.Options{})
		if err != nil {
			t.Fatal(err)
		}
		assertOnlyData(t, s, template)
	}
}

func assertOnlyData(t *testing.T, s *spec.Spec, template []byte) {
	t.Helper()
	files, err := spec.Files(s, template)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(files[spec.FlakeFile], template) {
		t.Fatalf("flake.nix differs from the template")
	}
	for name := range files {
		if name != spec.FlakeFile && name != spec.SpecFile && name != spec.SnippetFile {
			t.Fatalf("unexpected file %s", name)
		}
	}
	var back struct {
		Edition, Arch, Hostname string
		Packages, Services      []string
		Users                   []spec.User
	}
	if err := json.Unmarshal(files[spec.SpecFile], &back); err != nil {
		t.Fatalf("spec.json: %v", err)
	}
	if back.Hostname != s.Hostname || back.Edition != s.Edition || len(back.Packages) != len(s.Packages) {
		t.Fatalf("spec.json does not round-trip: %+v vs %+v", back, s)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(validSpec))
	f.Add([]byte(oldBackendSpec))
	f.Add([]byte(`{"services":{"openssh":true,"x\"; y":false}}`))
	f.Add([]byte(`{"edition":"edge","arch":"x86_64","hostname":"a","packages":["x\"; y"]}`))
	f.Add([]byte(`{"edition":"edge","arch":"x86_64","hostname":"a${b}"}`))
	f.Add([]byte(`{"edition":"edge","arch":"x86_64","hostname":"a","users":[{"name":"a\nb"}]}`))
	template := []byte("{ outputs = _: { }; }\n")
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := spec.Parse(bytes.NewReader(data), spec.Options{})
		if err != nil {
			if !spec.IsValidation(err) {
				t.Fatalf("non-validation error: %v", err)
			}
			return
		}
		// Every accepted string is plain ASCII without Nix syntax.
		for _, v := range append(append([]string{s.Hostname, s.Edition, s.Arch}, s.Packages...), s.Services...) {
			if strings.ContainsAny(v, "\"'$;{}\\\n <>/ ") && !strings.Contains(v, "'") {
				t.Fatalf("accepted %q", v)
			}
			for _, r := range v {
				if r > 127 {
					t.Fatalf("accepted non-ASCII %q", v)
				}
			}
		}
		assertOnlyData(t, s, template)
	})
}

// A spec user named after an account NixOS or its installer has would
// merge into it (nixos: the installer's passwordless autologin user) or
// fail evaluation on NixOS's isSystemUser/isNormalUser assertion.
func TestSpecUsersNeverTakeSystemAccounts(t *testing.T) {
	for _, name := range []string{"root", "nixos", "gdm", "avahi", "rtkit", "nscd", "polkituser", "sshd",
		"messagebus", "systemd-oom", "geoclue", "colord", "nobody", "nixbld", "nixbld7", "pipewire", "docker"} {
		js := `{"edition":"desktop","arch":"x86_64","hostname":"a","users":[{"name":"` + name + `"}]}`
		_, err := parse(t, js, spec.Options{})
		var ve *spec.ValidationError
		if !errors.As(err, &ve) || len(ve.Errors) != 1 || ve.Errors[0].Field != "users[0].name" ||
			!strings.Contains(ve.Errors[0].Rule, "system account") {
			t.Errorf("user %q: got %v, want a system account refusal of users[0].name", name, err)
		}
	}
	for _, name := range []string{"alice", "bob", "sourceos", "ops_1"} {
		js := `{"edition":"desktop","arch":"x86_64","hostname":"a","users":[{"name":"` + name + `"}]}`
		if _, err := parse(t, js, spec.Options{}); err != nil {
			t.Errorf("user %q refused: %v", name, err)
		}
	}
}

// Every name of the list is one a spec could otherwise ask for, so none
// is dead weight, and the list holds the registry's names.
func TestSystemAccountListIsLoginNames(t *testing.T) {
	names := spec.SystemAccounts()
	if len(names) < 300 {
		t.Fatalf("%d names: the list did not load", len(names))
	}
	for name := range names {
		js := `{"edition":"server","arch":"x86_64","hostname":"a","users":[{"name":"` + name + `"}]}`
		_, err := parse(t, js, spec.Options{})
		if err == nil || !strings.Contains(err.Error(), "system account") {
			t.Errorf("%q: %v", name, err)
		}
	}
}
