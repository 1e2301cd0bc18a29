package push

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/nix-community/go-nix/pkg/nixhash"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/nixcache/cachefmt"
	"github.com/socioprophet/sourceos/internal/nixcache/nardump"
	"github.com/socioprophet/sourceos/internal/nixstore"
)

// MismatchError says the NAR serialised from the store does not match what
// the store's database records; nothing is published for the path.
type MismatchError struct {
	Path              string
	WantHash, GotHash string
	WantSize, GotSize uint64
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%s: NAR differs from the store's record (hash %s, size %d; store says %s, %d)",
		e.Path, e.GotHash, e.GotSize, e.WantHash, e.WantSize)
}

// produced is what the serialising side of an upload computed.
type produced struct {
	fileHash []byte
	fileMD5  []byte
	fileSize uint64
	complete bool
	err      error
}

func (r produced) stored(key string) stored {
	return stored{URL: key, FileHash: r.fileHash, FileSize: r.fileSize, MD5: r.fileMD5}
}

// squattedError says a NAR's name holds bytes that are not ours.
type squattedError struct {
	key  string
	ours produced // complete: what we would have stored
}

func (e *squattedError) Error() string { return e.key + " holds other bytes than this NAR's" }

// uploadNAR stores pi's compressed NAR create-only and returns where. Its
// name is the NarHash's; if that name holds other bytes (planted there, or
// compressed differently by another pusher), the NAR goes under the name
// of its file hash, as nix copy names NARs, and if that is taken too,
// under that name with a random suffix nobody can predict.
func (p *pusher) uploadNAR(ctx context.Context, pi nixstore.PathInfo) (stored, error) {
	key, err := cachefmt.NarKey(pi.NarHash, p.codec)
	if err != nil {
		return stored{}, err
	}
	for attempt, vanished := 0, 0; ; attempt++ {
		st, err := p.uploadAs(ctx, pi, key, attempt == 0 && vanished == 0)
		if errors.Is(err, errVanished) && vanished < maxVanished {
			// The NAR found stored was deleted (a concurrent GC) before it
			// was inspected: the name is free again.
			vanished++
			attempt--
			continue
		}
		var sq *squattedError
		if !errors.As(err, &sq) || attempt == 2 {
			return st, err
		}
		p.o.Log.Warn("cache push: a NAR name holds other bytes; storing the NAR under another name", "path", pi.Path, "taken", key)
		suffix := ""
		if attempt == 1 {
			suffix = "-" + randomSuffix()
		}
		key = cachefmt.FileKey(sq.ours.fileHash, p.codec, suffix)
	}
}

// errVanished means a NAR name that refused a create-only upload held
// nothing any more when it was inspected.
var errVanished = errors.New("deleted since the upload found it stored")

// maxVanished bounds how often uploadNAR stores a NAR again after the
// copy it found stored vanished.
const maxVanished = 3

func randomSuffix() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand does not fail
	return hex.EncodeToString(b[:])
}

// uploadAs stores pi's NAR under key, retrying transient failures. The
// caller holds a slot of the limiter.
func (p *pusher) uploadAs(ctx context.Context, pi nixstore.PathInfo, key string, count bool) (stored, error) {
	var st stored
	err := p.retry(ctx, func() error {
		var err error
		t0 := time.Now()
		st, err = p.streamNAR(ctx, pi, key, count)
		if err == nil && pi.NarSize <= probeSize {
			p.lim.Latency(time.Since(t0))
		}
		return err
	})
	return st, err
}

// probeSize is the NAR size up to which an upload's time is mostly its
// round trip, so it tells the limiter about the link's queueing.
const probeSize = 64 << 10

// streamNAR uploads pi's NAR to key; count says whether the NAR bytes
// serialised go to the progress (once per path).
func (p *pusher) streamNAR(ctx context.Context, pi nixstore.PathInfo, key string, count bool) (stored, error) {
	pr, pw := io.Pipe()
	res := make(chan produced, 1)
	go func() {
		r := p.produce(pw, pi, produceOpts{count: count})
		pw.CloseWithError(r.err) // nil: a clean end
		res <- r
	}()
	var info blob.Info
	opt := blob.PutOptions{CreateOnly: true, ContentType: cachefmt.NarType, SizeHint: int64(pi.NarSize) + 4096,
		Deferred: p.syncs, Unbuffered: pi.NarSize <= probeSize}
	if p.proving {
		opt.Stored = &info
	}
	putErr := p.store.Put(ctx, key, pr, opt)
	pr.CloseWithError(errOr(putErr, io.ErrClosedPipe))
	r := <-res
	var mm *MismatchError
	switch {
	case errors.As(r.err, &mm):
		return stored{}, r.err
	case errors.Is(putErr, blob.ErrExists):
		return p.existing(ctx, pi, key, r)
	case putErr != nil:
		return stored{}, putErr
	case r.err != nil:
		return stored{}, r.err
	}
	p.upB.Add(int64(r.fileSize))
	st := r.stored(key)
	st.MD5 = info.MD5 // the MD5 of what the store received, where it keeps one
	if p.proving && len(st.MD5) != md5.Size {
		return p.storedMD5(ctx, st)
	}
	return st, nil
}

// storedMD5 fills in st.MD5 from the store, for a store that computes
// MD5s but did not give one with its answer to the upload.
func (p *pusher) storedMD5(ctx context.Context, st stored) (stored, error) {
	info, err := p.store.Stat(ctx, st.URL)
	if err != nil {
		return stored{}, err
	}
	if len(info.MD5) != md5.Size || uint64(info.Size) != st.FileSize {
		return stored{}, fmt.Errorf("%s: the store gives no MD5 for the NAR just uploaded", st.URL)
	}
	st.MD5 = info.MD5
	return st, nil
}

// produceOpts tunes produce.
type produceOpts struct {
	// count sends the NAR bytes to the push's figures and progress (once
	// per path).
	count bool
	// md5 computes the compressed file's MD5, to tell our bytes from
	// others' under a taken name. Uploads leave it out (it costs as much
	// CPU as SHA-256 with SHA extensions): push proofs take the MD5 the
	// store computed from the bytes it received.
	md5 bool
}

// produce serialises pi into w: NAR → hash → compress → hash → w. Its
// error says why w must not be committed: the NAR does not match the
// store's NarHash and NarSize, or w failed.
func (p *pusher) produce(w io.Writer, pi nixstore.PathInfo, po produceOpts) produced {
	fileHash, fileSize := sha256.New(), &counter{}
	sinks := []io.Writer{w, fileHash, fileSize}
	var fileMD5 hash.Hash
	if po.md5 {
		fileMD5 = md5.New()
		sinks = append(sinks, fileMD5)
	}
	cw, err := p.codec.NewWriter(io.MultiWriter(sinks...))
	if err != nil {
		return produced{err: err}
	}
	narHash, narSize := sha256.New(), &counter{}
	if po.count {
		narSize.add = p.addNarBytes
	}
	err = nardump.Dump(io.MultiWriter(cw, narHash, narSize), pi.Path)
	if cerr := cw.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = checkNar(pi, narHash, narSize.n)
	}
	if err != nil {
		return produced{err: err}
	}
	r := produced{fileHash: fileHash.Sum(nil), fileSize: fileSize.n, complete: true}
	if fileMD5 != nil {
		r.fileMD5 = fileMD5.Sum(nil)
	}
	return r
}

func (p *pusher) addNarBytes(n int64) {
	p.narB.Add(n)
	p.o.Progress.Bytes(n)
}

func checkNar(pi nixstore.PathInfo, h hash.Hash, size uint64) error {
	got := nixhash.MustNewHashWithEncoding(nixhash.SHA256, h.Sum(nil), nixhash.NixBase32, true).String()
	want, err := nixstore.NormaliseHash(pi.NarHash)
	if err != nil {
		return err
	}
	if got != want || size != pi.NarSize {
		return &MismatchError{Path: pi.Path, WantHash: want, GotHash: got, WantSize: pi.NarSize, GotSize: size}
	}
	return nil
}

// existing decides whether the object already stored under key (by
// another push, or planted) holds exactly the bytes we would store: same
// size and same MD5, as the store computed it (or, on a directory, as
// computed by reading the file). If the upload stopped before our side was
// complete, or without an MD5, the NAR is serialised again, to nowhere,
// for its hashes.
func (p *pusher) existing(ctx context.Context, pi nixstore.PathInfo, key string, r produced) (stored, error) {
	if !r.complete || r.fileMD5 == nil {
		if r = p.produce(io.Discard, pi, produceOpts{md5: true}); r.err != nil {
			return stored{}, r.err
		}
	}
	info, err := blob.Checksum(ctx, p.store, key)
	if errors.Is(err, blob.ErrNotFound) {
		return stored{}, fmt.Errorf("inspect existing %s: %w", key, errVanished)
	}
	if err != nil {
		return stored{}, fmt.Errorf("inspect existing %s: %w", key, err)
	}
	if !r.stored(key).ref().Matches(info) {
		return stored{}, &squattedError{key: key, ours: r}
	}
	st := r.stored(key)
	st.existing = true
	return st, nil
}

// stored describes an uploaded NAR.
type stored struct {
	URL      string
	FileHash []byte // sha256 of the compressed file
	FileSize uint64
	MD5      []byte // md5 of the compressed file, for push proofs
	// existing: the NAR was already stored (by another push), not
	// written by this one.
	existing bool
}

func (s stored) ref() cachefmt.NarRef {
	return cachefmt.NarRef{Key: s.URL, Size: int64(s.FileSize), MD5: s.MD5}
}

func (s stored) file() cachefmt.NarFile {
	return cachefmt.NarFile{URL: s.URL, FileHash: s.FileHash, FileSize: s.FileSize}
}

func errOr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

// counter counts bytes written, optionally reporting them.
type counter struct {
	n   uint64
	add func(int64)
}

func (c *counter) Write(b []byte) (int, error) {
	c.n += uint64(len(b))
	if c.add != nil {
		c.add(int64(len(b)))
	}
	return len(b), nil
}
