package catalog_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/catalog"
	"github.com/socioprophet/sourceos/internal/testrig"
)

func TestParseFlakeLockFixture(t *testing.T) {
	got, err := catalog.ParseFlakeLock(readTestFile(t, "testdata/flake.lock"))
	if err != nil {
		t.Fatal(err)
	}
	want := []catalog.LockedInput{
		{Node: "disko", Type: "github", Owner: "nix-community", Repo: "disko", Rev: "f720e64ec37fa16ebba6354eadf310f81555cc07", NarHash: "sha256-8hKhPQuMtXfJi+4zGJeFpBlBtZ3EWuLV8XldBNoY3VI=", LastModified: 1736711425},
		{Node: "local-overlay", Type: "path", Path: "/src/overlays", NarHash: "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", LastModified: 1700000000},
		{Node: "nixpkgs", Type: "github", Owner: "NixOS", Repo: "nixpkgs", Rev: "1dab772dd4a68a7bba5d9460685547ff8e17d899", NarHash: "sha256-ibkQrMHxF/7TqAYcQE+tAnH65izJ5bSpdmd6ypXU7s8=", LastModified: 1736549401},
		{Node: "secrets", Type: "git", URL: "https://git.example.org/sourceos/secrets.git", Rev: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b", Ref: "main", NarHash: "sha256-LCa0a2j/xo/5m0U8HTBBNBNCLXBkg7+g+YpeiGJm564=", LastModified: 1735000000},
		{Node: "wallpapers", Type: "tarball", URL: "https://example.org/wallpapers-1.0.tar.gz", NarHash: "sha256-2jmj7l5rSw0yVb/vlWAYkK/YBwk+gJ4UmTtnXIF7zH8="},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseFlakeLock:\n got %+v\nwant %+v", got, want)
	}
	uris := map[string]string{
		"disko":         "github:nix-community/disko/f720e64ec37fa16ebba6354eadf310f81555cc07",
		"local-overlay": "path:/src/overlays",
		"nixpkgs":       "github:NixOS/nixpkgs/1dab772dd4a68a7bba5d9460685547ff8e17d899",
		"secrets":       "git+https://git.example.org/sourceos/secrets.git?rev=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b",
		"wallpapers":    "tarball+https://example.org/wallpapers-1.0.tar.gz",
	}
	for _, in := range got {
		if in.URI() != uris[in.Node] {
			t.Errorf("%s: URI %q, want %q", in.Node, in.URI(), uris[in.Node])
		}
	}
}

func TestParseFlakeLockRejects(t *testing.T) {
	for name, lock := range map[string]string{
		"not json":       `{`,
		"old version":    `{"nodes":{},"root":"root","version":4}`,
		"no narHash":     `{"nodes":{"root":{},"x":{"locked":{"type":"github","owner":"o","repo":"r","rev":"a"}}},"root":"root","version":7}`,
		"no locked.type": `{"nodes":{"root":{},"x":{"locked":{"narHash":"sha256-AAAA"}}},"root":"root","version":7}`,
	} {
		if _, err := catalog.ParseFlakeLock([]byte(lock)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestParseFlakeLockFromRealNix locks a flake with a path input using the
// installed Nix, offline, and checks the input and its narHash come out.
func TestParseFlakeLockFromRealNix(t *testing.T) {
	nix := testrig.Nix(t)
	dir := t.TempDir()
	dep := filepath.Join(dir, "dep")
	top := filepath.Join(dir, "top")
	for _, d := range []string{dep, top} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(dep, "flake.nix"), `{ outputs = { self }: { x = 1; }; }`)
	write(t, filepath.Join(top, "flake.nix"), `{ inputs.dep.url = "path:`+dep+`"; outputs = { self, dep }: { }; }`)
	cmd := exec.Command(nix, "flake", "lock", "path:"+top)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nix flake lock: %v\n%s", err, out)
	}
	inputs, err := catalog.ParseFlakeLock(readTestFile(t, filepath.Join(top, "flake.lock")))
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) != 1 || inputs[0].Node != "dep" || inputs[0].Type != "path" {
		t.Fatalf("inputs = %+v, want one path input dep", inputs)
	}
	if !strings.HasPrefix(inputs[0].NarHash, "sha256-") || inputs[0].URI() != "path:"+dep {
		t.Fatalf("input = %+v (URI %s)", inputs[0], inputs[0].URI())
	}
}

func write(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func FuzzParseFlakeLock(f *testing.F) {
	f.Add([]byte(`{"nodes":{"root":{}},"root":"root","version":7}`))
	f.Add([]byte(`{"nodes":{"root":{},"x":{"locked":{"type":"github","owner":"o","repo":"r","rev":"a","narHash":"sha256-x"}}},"root":"root","version":7}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		inputs, err := catalog.ParseFlakeLock(data)
		if err != nil {
			return
		}
		for _, in := range inputs {
			if in.Type == "" || in.NarHash == "" {
				t.Fatalf("accepted input without type or narHash: %+v", in)
			}
			_ = in.URI()
		}
	})
}

func readTestFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
