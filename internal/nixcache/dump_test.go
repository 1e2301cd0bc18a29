package nixcache_test

import (
	"bytes"
	"crypto/rand"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/nix-community/go-nix/pkg/nar"

	"github.com/socioprophet/sourceos/internal/nixcache"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// narTree makes a directory with every kind of NAR node and the edge
// cases of the format: empty files and directories, sizes that need
// padding, a file larger than the dumper's buffer, an executable,
// symlinks, and names whose byte order differs from other orders.
func narTree(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "tree")
	big := make([]byte, 256<<10*3+5)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"empty": nil, "seven": []byte("1234567"), "eight": []byte("12345678"),
		"B": []byte("upper"), "a": []byte("lower"), "a-b": []byte("dash"), "a.b": []byte("dot"),
		"sub/deeper/big.bin": big, "sub/x": []byte("x\n"),
	}
	for name, data := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	must(t, os.Chmod(filepath.Join(root, "seven"), 0o755))
	must(t, os.Mkdir(filepath.Join(root, "emptydir"), 0o755))
	must(t, os.Symlink("sub/x", filepath.Join(root, "link")))
	must(t, os.Symlink("/nonexistent/target-of-odd-length", filepath.Join(root, "dangling")))
	return root
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Our NAR serialisation is byte for byte what nix-store --dump writes, on
// a tree with every edge case and on every path of the fixture closures,
// and go-nix's reader reads it back.
func TestDumpNARMatchesNixStoreDump(t *testing.T) {
	testrig.Nix(t)
	system, netboot := fixture(t)
	paths := append([]string{narTree(t)}, testrig.Closure(t, system, netboot)...)
	for _, p := range paths {
		var ours bytes.Buffer
		if err := nixcache.DumpNAR(&ours, p); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		theirs, err := exec.CommandContext(tctx(t), "nix-store", "--dump", p).Output()
		if err != nil {
			t.Fatalf("nix-store --dump %s: %v", p, err)
		}
		if !bytes.Equal(ours.Bytes(), theirs) {
			t.Fatalf("%s: our NAR (%d bytes) differs from nix-store --dump's (%d bytes)", p, ours.Len(), len(theirs))
		}
		readBack(t, p, ours.Bytes())
	}
	if err := nixcache.DumpNAR(io.Discard, filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("dumped a missing path")
	}
}

// readBack walks a NAR with go-nix's reader and checks it saw content.
func readBack(t *testing.T, p string, b []byte) {
	t.Helper()
	r, err := nar.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: go-nix: %v", p, err)
	}
	nodes := 0
	for {
		_, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: go-nix reader: %v", p, err)
		}
		nodes++
	}
	if nodes == 0 {
		t.Fatalf("%s: go-nix read no node", p)
	}
}
