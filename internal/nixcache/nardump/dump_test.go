package nardump_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nix-community/go-nix/pkg/nar"

	"github.com/socioprophet/sourceos/internal/nixcache/nardump"
)

// shapes are the trees the dumpers are compared on.
var shapes = []struct {
	name string
	make func(tb testing.TB, dir string)
}{
	{"small-files", smallFiles},
	{"large-files", largeFiles},
	{"deep-dirs", deepDirs},
	{"symlinks", symlinks},
}

func write(tb testing.TB, p string, data []byte, mode os.FileMode) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		tb.Fatal(err)
	}
}

func random(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// smallFiles: 5,000 files of 0 to 2 KiB in 50 directories, a tenth of
// them executable (a package's share/ and lib/).
func smallFiles(tb testing.TB, dir string) {
	r := rand.New(rand.NewPCG(1, 1))
	for i := range 5000 {
		mode := os.FileMode(0o644)
		if i%10 == 0 {
			mode = 0o755
		}
		write(tb, filepath.Join(dir, fmt.Sprintf("d%02d", i%50), fmt.Sprintf("f%04d.txt", i)), random(r, r.IntN(2048)), mode)
	}
}

// largeFiles: four files of 32 MiB (a kernel, an initrd, a squashfs).
func largeFiles(tb testing.TB, dir string) {
	r := rand.New(rand.NewPCG(2, 2))
	for i := range 4 {
		write(tb, filepath.Join(dir, fmt.Sprintf("blob%d", i)), random(r, 32<<20), 0o644)
	}
}

// deepDirs: a chain of 200 directories with a small file at each level.
func deepDirs(tb testing.TB, dir string) {
	r := rand.New(rand.NewPCG(3, 3))
	p := dir
	for i := range 200 {
		p = filepath.Join(p, fmt.Sprintf("l%d", i%10))
		write(tb, filepath.Join(p, "file"), random(r, 100), 0o644)
	}
}

// symlinks: 3,000 symlinks (a profile's bin/ and share/) around a few files.
func symlinks(tb testing.TB, dir string) {
	r := rand.New(rand.NewPCG(4, 4))
	write(tb, filepath.Join(dir, "real", "bin"), random(r, 4096), 0o755)
	for i := range 3000 {
		p := filepath.Join(dir, fmt.Sprintf("s%02d", i%30), fmt.Sprintf("link%04d", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		target := "/nix/store/" + strings.Repeat("a", 32) + fmt.Sprintf("-pkg-%d/bin/tool%d", i%97, i)
		if err := os.Symlink(target, p); err != nil {
			tb.Fatal(err)
		}
	}
}

// Our dumper and go-nix's write the same bytes for every shape.
func TestDumpMatchesGoNix(t *testing.T) {
	for _, s := range shapes {
		t.Run(s.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "tree")
			s.make(t, dir)
			if ours, theirs := digest(t, nardump.Dump, dir), digest(t, nar.DumpPath, dir); ours != theirs {
				t.Fatalf("our NAR %x, go-nix's %x", ours, theirs)
			}
		})
	}
}

func digest(tb testing.TB, dump func(io.Writer, string) error, dir string) [32]byte {
	tb.Helper()
	var b bytes.Buffer
	if err := dump(&b, dir); err != nil {
		tb.Fatal(err)
	}
	return sha256.Sum256(b.Bytes())
}

// BenchmarkDump serialises each shape with our dumper and with go-nix's
// (nar.DumpPath), into a SHA-256 (what a push does first with the bytes),
// after checking that both write the same NAR.
//
//	go test -run '^$' -bench Dump -benchtime 20x ./internal/nixcache/nardump/
func BenchmarkDump(b *testing.B) {
	for _, s := range shapes {
		dir := filepath.Join(b.TempDir(), "tree")
		s.make(b, dir)
		var size int64
		var buf bytes.Buffer
		if err := nardump.Dump(&buf, dir); err != nil {
			b.Fatal(err)
		}
		size = int64(buf.Len())
		if ours, theirs := digest(b, nardump.Dump, dir), digest(b, nar.DumpPath, dir); ours != theirs {
			b.Fatalf("%s: the dumpers disagree", s.name)
		}
		for _, d := range []struct {
			name string
			dump func(io.Writer, string) error
		}{{"ours", nardump.Dump}, {"go-nix", nar.DumpPath}} {
			b.Run(s.name+"/"+d.name, func(b *testing.B) {
				b.SetBytes(size)
				b.ReportAllocs()
				h := sha256.New()
				for b.Loop() {
					h.Reset()
					if err := d.dump(h, dir); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
