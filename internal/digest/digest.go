// Package digest hashes a stream once for everything the release needs:
// SHA-256 (the .sha256 sidecar and in-toto subjects) and BLAKE2b-512
// (minisign's prehashed signature), and SHA-512 only when asked for (a
// statement written before SHA-512 was dropped may name it). One read feeds
// the hashes, each running in its own goroutine over the same buffers, so
// hashing takes about as long as the slowest hash (BLAKE2b-512) rather than
// their sum. Memory is bounded by a small fixed pool of buffers whatever the
// input size.
package digest

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/blake2b"
)

// Set says which hashes to compute.
type Set uint8

// The hashes a Set may hold.
const (
	SHA256 Set = 1 << iota
	SHA512
	BLAKE2b512
)

// Default is what signing and verifying need: SHA-256 for the subject and
// the .sha256 file, BLAKE2b-512 for minisign. On two cores the SHA-256
// lane finishes well before the BLAKE2b-512 one, so the pair costs one
// BLAKE2b pass.
const Default = SHA256 | BLAKE2b512

// Digests are the hashes of one artifact. SHA512 is nil unless asked for.
type Digests struct {
	SHA256     []byte
	SHA512     []byte
	BLAKE2b512 []byte
	Size       int64
}

// SHA256Hex is the lowercase hex SHA-256.
func (d Digests) SHA256Hex() string { return hex.EncodeToString(d.SHA256) }

// SHA512Hex is the lowercase hex SHA-512, "" when it was not computed.
func (d Digests) SHA512Hex() string { return hex.EncodeToString(d.SHA512) }

// BLAKE2b512Hex is the lowercase hex BLAKE2b-512 (what b2sum prints).
func (d Digests) BLAKE2b512Hex() string { return hex.EncodeToString(d.BLAKE2b512) }

// Has reports whether every hash of set is present with its size.
func (d Digests) Has(set Set) bool {
	return (set&SHA256 == 0 || len(d.SHA256) == sha256.Size) &&
		(set&SHA512 == 0 || len(d.SHA512) == sha512.Size) &&
		(set&BLAKE2b512 == 0 || len(d.BLAKE2b512) == blake2b.Size)
}

// Complete reports whether the Default digests are present with their
// sizes (and SHA-512, when present, has its size).
func (d Digests) Complete() bool {
	return d.Has(Default) && (d.SHA512 == nil || d.Has(SHA512))
}

// Equal reports whether d and o describe the same bytes.
func (d Digests) Equal(o Digests) bool {
	return d.Size == o.Size && string(d.SHA256) == string(o.SHA256) &&
		string(d.SHA512) == string(o.SHA512) && string(d.BLAKE2b512) == string(o.BLAKE2b512)
}

const (
	// BlockSize is the size of one read.
	BlockSize = 256 << 10
	// Blocks is how many buffers are in flight at most; memory used is
	// Blocks*BlockSize whatever the input size.
	Blocks = 8
)

// File hashes the file at path.
func File(path string) (Digests, error) {
	f, err := os.Open(path)
	if err != nil {
		return Digests{}, fmt.Errorf("digest: %w", err)
	}
	defer f.Close()
	d, _, err := Copy(nil, f)
	if err != nil {
		return Digests{}, fmt.Errorf("digest %s: %w", path, err)
	}
	return d, nil
}

// Reader computes the Default digests of everything r yields.
func Reader(r io.Reader) (Digests, error) {
	d, _, err := Copy(nil, r)
	return d, err
}

// ReaderSet computes the digests of set of everything r yields.
func ReaderSet(r io.Reader, set Set) (Digests, error) {
	d, _, err := CopySet(nil, r, set)
	return d, err
}

// Copy copies src to dst and computes the Default digests on the way,
// reading src once. dst may be nil (hash only). It returns the digests and
// the number of bytes written to dst (or read, when dst is nil).
func Copy(dst io.Writer, src io.Reader) (Digests, int64, error) {
	return CopySet(dst, src, Default)
}

// CopySet is Copy computing the hashes of set.
func CopySet(dst io.Writer, src io.Reader, set Set) (Digests, int64, error) {
	hs := newHashes(set)
	lanes := make([]lane, 0, 4)
	for _, h := range hs.list() {
		lanes = append(lanes, hashLane(h))
	}
	var out *writeLane
	stop := func() bool { return false }
	if dst != nil && dst != io.Discard {
		out = &writeLane{w: dst}
		lanes = append(lanes, out.write)
		stop = out.failed.Load
	}
	n, err := fanOut(src, lanes, stop)
	if err == nil && out != nil {
		err = out.err
	}
	if err != nil {
		return Digests{}, written(out, n), err
	}
	d := hs.sums()
	d.Size = n
	return d, n, nil
}

// hashes are the running hashes of a Set (nil when not asked for).
type hashes struct{ sha256, sha512, blake2b hash.Hash }

func newHashes(set Set) hashes {
	var h hashes
	if set&SHA256 != 0 {
		h.sha256 = sha256.New()
	}
	if set&SHA512 != 0 {
		h.sha512 = sha512.New()
	}
	if set&BLAKE2b512 != 0 {
		h.blake2b = newBLAKE2b()
	}
	return h
}

// list is the running hashes, slowest first so its lane starts first.
func (h hashes) list() []hash.Hash {
	var out []hash.Hash
	for _, x := range []hash.Hash{h.blake2b, h.sha512, h.sha256} {
		if x != nil {
			out = append(out, x)
		}
	}
	return out
}

func (h hashes) sums() Digests {
	sum := func(x hash.Hash) []byte {
		if x == nil {
			return nil
		}
		return x.Sum(nil)
	}
	return Digests{SHA256: sum(h.sha256), SHA512: sum(h.sha512), BLAKE2b512: sum(h.blake2b)}
}

func written(out *writeLane, read int64) int64 {
	if out == nil {
		return read
	}
	return out.n
}

func newBLAKE2b() hash.Hash {
	h, err := blake2b.New512(nil)
	if err != nil { // only fails for a key longer than 64 bytes
		panic(err)
	}
	return h
}

// A lane consumes every block in order, in its own goroutine.
type lane func(p []byte)

func hashLane(h hash.Hash) lane { return func(p []byte) { h.Write(p) } }

// writeLane copies blocks to a writer; after the first error it drops the
// rest and reports the error (failed is polled by the reader to stop early).
type writeLane struct {
	w      io.Writer
	n      int64
	err    error
	failed atomic.Bool
}

func (l *writeLane) write(p []byte) {
	if l.err != nil {
		return
	}
	n, err := l.w.Write(p)
	l.n += int64(n)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		l.err = fmt.Errorf("write: %w", err)
		l.failed.Store(true)
	}
}

type block struct {
	buf  []byte
	n    int
	refs atomic.Int32
}

// fanOut reads src into pooled blocks and hands each block to every lane;
// a block returns to the pool once every lane is done with it. Reading ends
// early when stop reports true.
func fanOut(src io.Reader, lanes []lane, stop func() bool) (int64, error) {
	free := make(chan *block, Blocks)
	for range Blocks {
		free <- &block{buf: make([]byte, BlockSize)}
	}
	queues := make([]chan *block, len(lanes))
	var wg sync.WaitGroup
	for i, run := range lanes {
		queues[i] = make(chan *block, Blocks)
		wg.Go(func() {
			for b := range queues[i] {
				run(b.buf[:b.n])
				if b.refs.Add(-1) == 0 {
					free <- b
				}
			}
		})
	}
	n, err := readBlocks(src, free, queues, stop)
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	return n, err
}

func readBlocks(src io.Reader, free chan *block, queues []chan *block, stop func() bool) (int64, error) {
	var total int64
	for {
		b := <-free
		n, err := io.ReadFull(src, b.buf)
		if n > 0 {
			total += int64(n)
			b.n = n
			b.refs.Store(int32(len(queues)))
			for _, q := range queues {
				q <- b
			}
		} else {
			free <- b
		}
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return total, nil
		case err != nil:
			return total, fmt.Errorf("read: %w", err)
		}
		if stop() {
			return total, nil
		}
	}
}
