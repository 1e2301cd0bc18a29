package digest_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"golang.org/x/crypto/blake2b"

	"github.com/socioprophet/sourceos/internal/digest"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// reference is the Default digests of p, computed with the standard
// library one hash at a time.
func reference(p []byte) digest.Digests {
	a, c := sha256.Sum256(p), blake2b.Sum512(p)
	return digest.Digests{SHA256: a[:], BLAKE2b512: c[:], Size: int64(len(p))}
}

// withSHA512 adds the SHA-512 of p to d.
func withSHA512(d digest.Digests, p []byte) digest.Digests {
	b := sha512.Sum512(p)
	d.SHA512 = b[:]
	return d
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	p := make([]byte, n)
	if _, err := rand.Read(p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDigestsMatchReferenceAtBlockBoundaries(t *testing.T) {
	for _, n := range []int{0, 1, digest.BlockSize - 1, digest.BlockSize, digest.BlockSize + 1, digest.Blocks*digest.BlockSize + 7, 3*digest.Blocks*digest.BlockSize + 1} {
		p := randomBytes(t, n)
		want := reference(p)
		// One-byte reads exercise short reads; a plain reader the fast path.
		for name, r := range map[string]io.Reader{"plain": bytes.NewReader(p), "half": iotest.HalfReader(bytes.NewReader(p))} {
			got, err := digest.Reader(r)
			if err != nil {
				t.Fatalf("%d/%s: %v", n, name, err)
			}
			if !got.Equal(want) || !got.Complete() {
				t.Errorf("%d/%s: digests differ from the reference", n, name)
			}
		}
		got, err := digest.ReaderSet(bytes.NewReader(p), digest.Default|digest.SHA512)
		if err != nil || !got.Equal(withSHA512(want, p)) || !got.Has(digest.SHA512) {
			t.Errorf("%d with SHA-512: digests differ from the reference (%v)", n, err)
		}
	}
}

// The default path computes no SHA-512 (nothing downstream needs it), and
// a Set computes exactly what it names.
func TestSetsComputeWhatTheyName(t *testing.T) {
	p := randomBytes(t, digest.BlockSize+9)
	d, err := digest.Reader(bytes.NewReader(p))
	if err != nil {
		t.Fatal(err)
	}
	if d.SHA512 != nil || d.Has(digest.SHA512) || !d.Has(digest.Default) {
		t.Errorf("default digests: sha512 %x, has default %v", d.SHA512, d.Has(digest.Default))
	}
	only, err := digest.ReaderSet(bytes.NewReader(p), digest.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if only.SHA256Hex() != d.SHA256Hex() || only.BLAKE2b512 != nil || only.Complete() {
		t.Errorf("SHA-256 only: %+v", only)
	}
	bad := d
	bad.SHA512 = []byte{1, 2, 3}
	if bad.Complete() {
		t.Error("a truncated SHA-512 counts as complete")
	}
}

func TestCopyWritesEveryByteOnce(t *testing.T) {
	p := randomBytes(t, 5*digest.BlockSize+123)
	var dst bytes.Buffer
	d, n, err := digest.Copy(&dst, bytes.NewReader(p))
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(p)) || !bytes.Equal(dst.Bytes(), p) {
		t.Fatalf("copied %d bytes, equal=%v", n, bytes.Equal(dst.Bytes(), p))
	}
	if !d.Equal(reference(p)) {
		t.Error("digests of the copy differ")
	}
}

type failingWriter struct{ after int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.after <= 0 {
		return 0, errors.New("disk full")
	}
	w.after--
	return len(p), nil
}

func TestCopyReportsWriteAndReadErrors(t *testing.T) {
	p := randomBytes(t, 4*digest.BlockSize)
	_, n, err := digest.Copy(&failingWriter{after: 1}, bytes.NewReader(p))
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("write error: %v", err)
	}
	if n != digest.BlockSize {
		t.Errorf("written = %d, want %d", n, digest.BlockSize)
	}
	_, _, err = digest.Copy(nil, iotest.TimeoutReader(bytes.NewReader(p)))
	if err == nil {
		t.Fatal("read error not reported")
	}
}

// The digests agree with the coreutils tools, on a file.
func TestFileAgreesWithCoreutils(t *testing.T) {
	b2sum := testrig.RequireTool(t, "b2sum")
	sha256sum := testrig.RequireTool(t, "sha256sum")
	path := filepath.Join(t.TempDir(), "artifact.bin")
	if err := os.WriteFile(path, randomBytes(t, 3*digest.BlockSize+5), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := digest.File(path)
	if err != nil {
		t.Fatal(err)
	}
	for tool, want := range map[string]string{b2sum: d.BLAKE2b512Hex(), sha256sum: d.SHA256Hex()} {
		out, err := exec.Command(tool, path).Output()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Fields(string(out))[0]; got != want {
			t.Errorf("%s: %s, we computed %s", tool, got, want)
		}
	}
	if _, err := digest.File(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// zeroReader yields n zero bytes without holding them.
type zeroReader struct{ n int64 }

func (z *zeroReader) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > z.n {
		p = p[:z.n]
	}
	clear(p)
	z.n -= int64(len(p))
	return len(p), nil
}

// Memory stays flat: hashing 256 MiB allocates about the buffer pool.
func TestMemoryIsBounded(t *testing.T) {
	const size = 256 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	d, err := digest.Reader(&zeroReader{n: size})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if d.Size != size {
		t.Fatalf("hashed %d bytes, want %d", d.Size, size)
	}
	limit := uint64(2 * digest.Blocks * digest.BlockSize)
	if got := after.TotalAlloc - before.TotalAlloc; got > limit {
		t.Errorf("allocated %d bytes for a %d-byte stream, limit %d", got, size, limit)
	}
}

func BenchmarkFile(b *testing.B) {
	path := filepath.Join(b.TempDir(), "f")
	p := make([]byte, 64<<20)
	rand.Read(p)
	if err := os.WriteFile(path, p, 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if d, err := digest.File(path); err != nil || d.Size != int64(len(p)) {
			b.Fatal(err)
		}
	}
}

// BenchmarkEachHash is each hash alone on this CPU, the lanes' costs:
// go test -run '^$' -bench EachHash ./internal/digest
func BenchmarkEachHash(b *testing.B) {
	p := make([]byte, digest.BlockSize)
	rand.Read(p)
	for name, set := range map[string]digest.Set{"SHA-256": digest.SHA256, "SHA-512": digest.SHA512, "BLAKE2b-512": digest.BLAKE2b512} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(p)))
			r := &repeatReader{p: p}
			r.n = int64(b.N) * int64(len(p))
			b.ResetTimer()
			if _, err := digest.ReaderSet(r, set); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// repeatReader yields p over and over, n bytes in all.
type repeatReader struct {
	p []byte
	n int64
}

func (r *repeatReader) Read(b []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	k := copy(b, r.p)
	if int64(k) > r.n {
		k = int(r.n)
	}
	r.n -= int64(k)
	return k, nil
}
