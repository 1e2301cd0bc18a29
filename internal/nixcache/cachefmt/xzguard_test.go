package cachefmt

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"testing"

	"github.com/ulikunitz/xz"
)

// xzFile compresses data with cfg, count times over (concatenated
// streams, with stream padding between them when pad).
func xzFile(t *testing.T, cfg xz.WriterConfig, data []byte, count int, pad bool) []byte {
	t.Helper()
	var out bytes.Buffer
	for i := range count {
		if i > 0 && pad {
			out.Write(make([]byte, 8))
		}
		w, err := cfg.NewWriter(&out)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return out.Bytes()
}

// The guard hands every byte of well-formed xz files on unchanged (one or
// many blocks and streams, stream padding, every check type, stored and
// compressed chunks), and the decoder behind it gets the data back.
func TestXZGuardPassesWellFormedFiles(t *testing.T) {
	random := make([]byte, 300<<10) // incompressible: stored chunks
	_, _ = rand.Read(random)
	text := bytes.Repeat([]byte("nix store path contents\n"), 40<<10)
	cases := map[string]struct {
		cfg   xz.WriterConfig
		data  []byte
		count int
		pad   bool
	}{
		"one block":            {xz.WriterConfig{}, text, 1, false},
		"many blocks, sha256":  {xz.WriterConfig{BlockSize: 64 << 10, CheckSum: xz.SHA256}, text, 1, false},
		"crc32, random":        {xz.WriterConfig{CheckSum: xz.CRC32, BlockSize: 100 << 10}, random, 1, false},
		"no check":             {xz.WriterConfig{NoCheckSum: true}, text, 1, false},
		"streams with padding": {xz.WriterConfig{BlockSize: 200 << 10}, text, 3, true},
		"empty":                {xz.WriterConfig{}, nil, 1, false},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			file := xzFile(t, c.cfg, c.data, c.count, c.pad)
			passed, err := io.ReadAll(newXZGuard(bytes.NewReader(file), MaxDecodeWindow))
			if err != nil || !bytes.Equal(passed, file) {
				t.Fatalf("guard: %v; passed %d of %d bytes unchanged: %v", err, len(passed), len(file), bytes.Equal(passed, file))
			}
			codec, _ := CodecFor("xz")
			r, err := codec.NewReader(bytes.NewReader(file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, bytes.Repeat(c.data, c.count)) {
				t.Fatalf("decode through the guard: %v (%d bytes)", err, len(got))
			}
		})
	}
}

// A block declaring a dictionary beyond the limit is refused before the
// decoder sees its header; so are malformed files.
func TestXZGuardRefuses(t *testing.T) {
	big := xzFile(t, xz.WriterConfig{DictCap: 16 << 20}, []byte("x"), 1, false)
	_, err := io.ReadAll(newXZGuard(bytes.NewReader(big), 8<<20))
	if !errors.Is(err, ErrDecodeLimit) {
		t.Fatalf("16 MiB dictionary under an 8 MiB limit: %v", err)
	}
	if _, err := io.ReadAll(newXZGuard(bytes.NewReader(big), 16<<20)); err != nil {
		t.Fatalf("16 MiB dictionary under a 16 MiB limit: %v", err)
	}
	good := xzFile(t, xz.WriterConfig{}, []byte("hello"), 1, false)
	for name, file := range map[string][]byte{
		"not xz":    []byte("hello, world"),
		"truncated": good[:len(good)-3],
		"bad chunk": append(append(bytes.Clone(good[:24]), 0x7f), good[25:]...),
	} {
		if _, err := io.ReadAll(newXZGuard(bytes.NewReader(file), MaxDecodeWindow)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Whatever the input, the guard does not panic and what it passes on is a
// prefix of the input.
func FuzzXZGuard(f *testing.F) {
	f.Add([]byte{})
	for _, cfg := range []xz.WriterConfig{{}, {BlockSize: 4096, CheckSum: xz.SHA256}} {
		var b bytes.Buffer
		w, _ := cfg.NewWriter(&b)
		_, _ = w.Write(bytes.Repeat([]byte("abc"), 5000))
		_ = w.Close()
		f.Add(b.Bytes())
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, _ := io.ReadAll(newXZGuard(bytes.NewReader(in), MaxDecodeWindow))
		if !bytes.HasPrefix(in, out) {
			t.Fatalf("passed bytes that are not a prefix of the input")
		}
	})
}
