package spec_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/spec"
	"github.com/socioprophet/sourceos/internal/testrig"
)

var snippetCases = []struct {
	name    string
	snippet string
	refuse  string // a token that must be reported; "" = accepted
}{
	{"plain module", `{ pkgs, lib, ... }: { networking.firewall.allowedTCPPorts = [ 22 80 ]; environment.systemPackages = [ pkgs.htop ]; services.openssh.enable = lib.mkForce true; }`, ""},
	{"strings with slashes", `{ ... }: { fileSystems."/".device = "/dev/sda1"; environment.etc."motd".text = "hi ${"there"}"; }`, ""},
	{"division is not a path", `{ ... }: { boot.kernel.sysctl."vm.x" = 10 / 2 - 1 * 3; x = 1 < 2; }`, ""},
	{"builtins.exec", `{ ... }: { x = builtins.exec [ "id" ]; }`, "builtins"},
	{"inherit from builtins", `{ ... }: let inherit (builtins) getEnv; in { x = getEnv "HOME"; }`, "builtins"},
	{"dynamic builtins attr", `{ ... }: let n = "readFile"; in { x = builtins.${n} "/etc/shadow"; }`, "builtins"},
	{"__getEnv alias", `{ ... }: { x = __getEnv "HOME"; }`, "__getEnv"},
	{"fetchTarball", `{ ... }: { x = fetchTarball "https://example.org/x.tar.gz"; }`, "fetchTarball"},
	{"import search path", `{ ... }: { x = import <nixpkgs> { }; }`, "import"},
	{"search path alone", `{ ... }: { x = <nixpkgs>; }`, "__findFile"},
	{"absolute path", `{ ... }: { x = /etc/passwd; }`, "/etc/passwd"},
	{"relative path", `{ ... }: { x = ./secret; }`, "secret"},
	{"parent path", `{ ... }: { x = ../../etc; }`, "/etc"},
	{"home path", `{ ... }: { x = ~/key; }`, "key"},
	{"store path", `{ ... }: { x = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x"; }`, "/nix/store/"},
	{"store path in antiquote", `{ ... }: { x = "a${"/nix/store/abc"}"; }`, "/nix/store/"},
	{"lib.fileContents", `{ lib, ... }: { x = lib.fileContents "/etc/shadow"; }`, "fileContents"},
	{"scopedImport", `{ ... }: { x = scopedImport { } "/x"; }`, "scopedImport"},
}

// Real Nix parses each snippet; the checker reads the parser's output.
func TestSnippetCheckerOnRealParserOutput(t *testing.T) {
	testrig.Nix(t)
	ni := testrig.RequireTool(t, "nix-instantiate")
	dir := t.TempDir()
	for _, c := range snippetCases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".nix")
			if err := os.WriteFile(p, []byte(c.snippet), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(ni, "--parse", p).CombinedOutput()
			if err != nil {
				t.Fatalf("parse: %v\n%s", err, out)
			}
			v := spec.CheckSnippetAST(string(out))
			if c.refuse == "" {
				if len(v) > 0 {
					t.Fatalf("refused a harmless snippet: %+v (AST %s)", v, out)
				}
				return
			}
			found := false
			for _, x := range v {
				if strings.Contains(x.Token, c.refuse) {
					found = true
				}
			}
			if !found {
				t.Fatalf("want %q refused, got %+v (AST %s)", c.refuse, v, out)
			}
		})
	}
}

func FuzzCheckSnippetAST(f *testing.F) {
	for _, c := range snippetCases {
		f.Add(c.snippet)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_ = spec.CheckSnippetAST(s) // must terminate without panicking
	})
}
