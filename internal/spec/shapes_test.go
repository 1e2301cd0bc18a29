package spec_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/catalog"
	"github.com/socioprophet/sourceos/internal/spec"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// oldBackendSpec is the spec of the shell pipeline's build-custom-image.sh
// header, as the self-serve backend sends it: services as an object of
// booleans.
const oldBackendSpec = `{"edition":"desktop","arch":"x86_64","hostname":"my-host","packages":["htop","tmux"],"services":{"openssh":true,"docker":false},"users":[{"name":"alice","groups":["wheel"]}]}`

// Both shapes of the services, and the defaults of the fields the old
// builder let a spec leave out (or set to null), read into the same
// normalised spec.
func TestOldSpecShapesNormalise(t *testing.T) {
	cases := []struct {
		name, js string
		want     spec.Spec
	}{
		{"old backend's spec", oldBackendSpec, spec.Spec{Edition: "desktop", Arch: "x86_64", Hostname: "my-host",
			Packages: []string{"htop", "tmux"}, Services: []string{"openssh"}, Users: []spec.User{{Name: "alice", Groups: []string{"wheel"}}}}},
		{"services as a list", `{"edition":"desktop","arch":"x86_64","hostname":"my-host","packages":["htop","tmux"],"services":["openssh"],"users":[{"name":"alice","groups":["wheel"]}]}`,
			spec.Spec{Edition: "desktop", Arch: "x86_64", Hostname: "my-host",
				Packages: []string{"htop", "tmux"}, Services: []string{"openssh"}, Users: []spec.User{{Name: "alice", Groups: []string{"wheel"}}}}},
		{"empty object", `{}`, spec.Spec{Edition: "desktop", Arch: "x86_64", Hostname: "sourceos"}},
		{"nulls", `{"edition":null,"arch":null,"hostname":null,"packages":null,"services":null,"users":null}`,
			spec.Spec{Edition: "desktop", Arch: "x86_64", Hostname: "sourceos"}},
		{"packages only", `{"packages":["htop"]}`, spec.Spec{Edition: "desktop", Arch: "x86_64", Hostname: "sourceos", Packages: []string{"htop"}}},
		{"aarch64 server", `{"edition":"server","arch":"aarch64"}`, spec.Spec{Edition: "server", Arch: "aarch64", Hostname: "sourceos"}},
		{"every service off", `{"services":{"openssh":false,"docker":false}}`, spec.Spec{Edition: "desktop", Arch: "x86_64", Hostname: "sourceos"}},
		{"both on", `{"services":{"openssh":true,"docker":true}}`, spec.Spec{Edition: "desktop", Arch: "x86_64", Hostname: "sourceos", Services: []string{"docker", "openssh"}}},
		{"empty object of services", `{"services":{}}`, spec.Spec{Edition: "desktop", Arch: "x86_64", Hostname: "sourceos"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := parse(t, c.js, spec.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if s.Edition != c.want.Edition || s.Arch != c.want.Arch || s.Hostname != c.want.Hostname ||
				!slices.Equal(s.Packages, c.want.Packages) || !slices.Equal(s.Services, c.want.Services) ||
				len(s.Users) != len(c.want.Users) {
				t.Errorf("parsed %+v, want %+v", *s, c.want)
			}
		})
	}
}

// The normalised form is what the build reads and the provenance records:
// the same for both shapes.
func TestBothShapesHaveOneCanonicalForm(t *testing.T) {
	old, err := parse(t, oldBackendSpec, spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	list, err := parse(t, strings.Replace(oldBackendSpec, `{"openssh":true,"docker":false}`, `["openssh"]`, 1), spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := old.Canonical()
	b, _ := list.Canonical()
	if string(a) != string(b) {
		t.Fatalf("canonical forms differ:\n%s\n%s", a, b)
	}
	var back struct{ Services []string }
	if err := json.Unmarshal(a, &back); err != nil || !slices.Equal(back.Services, []string{"openssh"}) {
		t.Fatalf("canonical services = %v (%v):\n%s", back.Services, err, a)
	}
	none, err := parse(t, `{}`, spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := none.Canonical()
	for _, want := range []string{`"edition": "desktop"`, `"arch": "x86_64"`, `"hostname": "sourceos"`} {
		if !strings.Contains(string(c), want) {
			t.Errorf("canonical form of {} lacks %s:\n%s", want, c)
		}
	}
}

// The object shape is as strict as the list: a name that is not an allowed
// service is refused and named, whatever its value; a value is a boolean.
// A default applies only to a field left out or null: an empty hostname is
// still refused.
func TestServiceObjectIsStrict(t *testing.T) {
	cases := []struct{ name, js, field, value, rule string }{
		{"unknown on", `{"services":{"telnet":true}}`, "services.telnet", "telnet", "one of openssh, docker"},
		{"unknown off", `{"services":{"openssh":true,"telnet":false}}`, "services.telnet", "telnet", "one of openssh, docker"},
		{"wrong case", `{"services":{"OpenSSH":true}}`, "services.OpenSSH", "OpenSSH", "one of openssh, docker"},
		{"string value", `{"services":{"openssh":"true"}}`, "services.openssh", `\"true\"`, "true (turn the service on) or false"},
		{"number value", `{"services":{"docker":1}}`, "services.docker", "1", "true (turn the service on) or false"},
		{"string", `{"services":"openssh"}`, "services", "openssh", "list of service names"},
		{"list of objects", `{"services":[{"openssh":true}]}`, "services", "openssh", "list of service names"},
		{"twice", `{"services":{"openssh":true,"openssh":false}}`, "services.openssh", "openssh", "given twice"},
		{"empty hostname", `{"hostname":""}`, "hostname", `""`, "RFC 1123"},
		{"unknown field", `{"edition":"desktop","tier":"premium"}`, "tier", "tier", "unknown field"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parse(t, c.js, spec.Options{})
			var ve *spec.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("want a ValidationError, got %v", err)
			}
			for _, want := range []string{c.field + ":", c.value, c.rule} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
	// A long object or list is refused as a whole, not name by name.
	many := map[string]bool{}
	var list []string
	for i := range 5000 {
		many[fmt.Sprintf("svc%d", i)] = true
		list = append(list, "telnet")
	}
	for name, services := range map[string]any{"object": many, "list": list} {
		js, _ := json.Marshal(map[string]any{"services": services})
		_, err := parse(t, string(js), spec.Options{})
		var ve *spec.ValidationError
		if !errors.As(err, &ve) || len(ve.Errors) != 1 || !strings.Contains(err.Error(), "at most 16") {
			t.Errorf("%s of 5000 services: %.200v", name, err)
		}
	}
	// Every problem at once, in a stable order.
	_, err := parse(t, `{"services":{"zeta":true,"alpha":1,"docker":"yes"}}`, spec.Options{})
	var ve *spec.ValidationError
	if !errors.As(err, &ve) || len(ve.Errors) != 3 || ve.Errors[0].Field != "services.alpha" ||
		ve.Errors[1].Field != "services.docker" || ve.Errors[2].Field != "services.zeta" {
		t.Fatalf("got %v", err)
	}
}

// A spec that leaves the edition out builds the default edition: the
// repository's catalog (and the test fixture's) must let custom builds
// start from it.
func TestDefaultEditionIsACustomEdition(t *testing.T) {
	root := testrig.RepoRoot(t)
	for _, p := range []string{"catalog.json", "testdata/fixture-flake/catalog.json"} {
		c, err := catalog.Load(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(c.CustomEditions(), spec.DefaultEdition) {
			t.Errorf("%s: the default edition %q is not among the custom editions %v", p, spec.DefaultEdition, c.CustomEditions())
		}
	}
}
