package checks_test

import (
	"reflect"
	"testing"

	"github.com/socioprophet/sourceos/internal/catalog"
	"github.com/socioprophet/sourceos/internal/checks"
	"github.com/socioprophet/sourceos/internal/execx"
)

func TestArgv(t *testing.T) {
	files := checks.EvalFiles{Module: "/t/module-eval.nix", NixOS: "/t/nixos-eval.nix"}
	mod, err := checks.ModuleEvalCmd("nix-instantiate", files, checks.ModuleRequest{
		Root: "/r", File: "/r/hosts/h/default.nix", Name: `h"; abort "x`, Packages: []string{"tailscale"}, Paths: [][]string{{"a", "b"}}})
	if err != nil {
		t.Fatal(err)
	}
	nixos, err := checks.NixOSEvalCmd("nix-instantiate", files, checks.NixOSRequest{Flake: "path:/r", Name: "h", Paths: [][]string{{"a"}}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		got  []string
		want []string
	}{
		// The request, whatever it holds, is a string argument, never code.
		{"module eval", append([]string{mod.Name}, mod.Args...), []string{"nix-instantiate", "--eval", "--strict", "--json", "/t/module-eval.nix",
			"--argstr", "request", `{"root":"/r","file":"/r/hosts/h/default.nix","name":"h\"; abort \"x","system":"","packages":["tailscale"],"paths":[["a","b"]],"modules":null,"args":null,"stubs":null,"factsFile":""}`}},
		{"nixos eval", append([]string{nixos.Name}, nixos.Args...), []string{"nix-instantiate", "--eval", "--strict", "--json",
			"--option", "extra-experimental-features", "nix-command flakes", "/t/nixos-eval.nix",
			"--argstr", "request", `{"flake":"path:/r","name":"h","paths":[["a"]]}`}},
		// The probe lists the inputs' store paths without fetching, asks the
		// store which are missing, and only then fetches, with short timeouts.
		{"inputs", argv(checks.InputsCmd("nix", catalog.FlakeRef("/r"))),
			[]string{"nix", "--extra-experimental-features", "nix-command flakes",
				"flake", "archive", "--json", "--dry-run", "--no-update-lock-file", "/r"}},
		{"missing", argv(checks.MissingCmd("nix-store", []string{"/nix/store/a-source", "/nix/store/b-source"})),
			[]string{"nix-store", "--check-validity", "--print-invalid", "/nix/store/a-source", "/nix/store/b-source"}},
		{"fetch", argv(checks.FetchCmd("nix", "/r")),
			[]string{"nix", "--extra-experimental-features", "nix-command flakes",
				"--option", "download-attempts", "1", "--option", "connect-timeout", "5", "--option", "stalled-download-timeout", "15",
				"flake", "archive", "--json", "--no-update-lock-file", "/r"}},
		{"shellcheck", func() []string {
			c := checks.ShellcheckCmd("shellcheck", "/r", []string{"a.sh", "b"})
			return append([]string{c.Name, c.Dir}, c.Args...)
		}(),
			[]string{"shellcheck", "/r", "--severity=warning", "--format=json1", "--external-sources", "a.sh", "b"}},
		{"nix parse", func() []string {
			c := checks.NixParseCmd("nix-instantiate", "/r", "x.nix")
			return append([]string{c.Name, c.Dir}, c.Args...)
		}(),
			[]string{"nix-instantiate", "/r", "--parse", "x.nix"}},
	}
	for _, c := range cases {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s:\n got %q\nwant %q", c.name, c.got, c.want)
		}
	}
}

func argv(c execx.Cmd) []string { return append([]string{c.Name}, c.Args...) }
