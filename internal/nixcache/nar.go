package nixcache

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/nix-community/go-nix/pkg/nixhash"

	"github.com/socioprophet/sourceos/internal/blob"
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
	fileSize uint64
	complete bool
	err      error
}

// uploadNAR stores pi's compressed NAR (create-only, under a key derived
// from the NarHash), retrying transient failures.
func (p *pusher) uploadNAR(ctx context.Context, pi nixstore.PathInfo) (stored, error) {
	var st stored
	err := retry(ctx, p.lim, func() error {
		if err := p.lim.Acquire(ctx); err != nil {
			return err
		}
		var err error
		st, err = p.streamNAR(ctx, pi)
		p.lim.Release(err == nil)
		return err
	})
	return st, err
}

func (p *pusher) streamNAR(ctx context.Context, pi nixstore.PathInfo) (stored, error) {
	key, err := narKey(pi.NarHash, p.codec)
	if err != nil {
		return stored{}, err
	}
	pr, pw := io.Pipe()
	res := make(chan produced, 1)
	go func() { res <- p.produce(pw, pi) }()
	putErr := p.store.Put(ctx, key, pr, blob.PutOptions{CreateOnly: true, ContentType: narType, SizeHint: int64(pi.NarSize) + 4096})
	pr.CloseWithError(errOr(putErr, io.ErrClosedPipe))
	r := <-res
	var mm *MismatchError
	switch {
	case errors.As(r.err, &mm):
		return stored{}, r.err
	case errors.Is(putErr, blob.ErrExists):
		return p.existing(ctx, key, r)
	case putErr != nil:
		return stored{}, putErr
	case r.err != nil:
		return stored{}, r.err
	}
	p.upB.Add(int64(r.fileSize))
	return stored{URL: key, FileHash: r.fileHash, FileSize: r.fileSize}, nil
}

func errOr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

// produce serialises pi into pw: NAR → hash → compress → hash → pw. It
// closes pw with an error, so the upload is abandoned, if the NAR does not
// match the store's NarHash and NarSize.
func (p *pusher) produce(pw *io.PipeWriter, pi nixstore.PathInfo) produced {
	fileHash, fileSize := sha256.New(), &counter{}
	cw, err := p.codec.newWriter(io.MultiWriter(pw, fileHash, fileSize))
	if err != nil {
		pw.CloseWithError(err)
		return produced{err: err}
	}
	narHash, narSize := sha256.New(), &counter{add: p.addNarBytes}
	err = dumpNAR(io.MultiWriter(cw, narHash, narSize), pi.Path)
	if cerr := cw.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = checkNar(pi, narHash, narSize.n)
	}
	if err != nil {
		pw.CloseWithError(err)
		return produced{err: err}
	}
	pw.Close()
	return produced{fileHash: fileHash.Sum(nil), fileSize: fileSize.n, complete: true}
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

// existing describes a NAR another push already stored under key: if its
// size is ours, it is our bytes (same NarHash, same codec); otherwise its
// FileHash is computed by reading it.
func (p *pusher) existing(ctx context.Context, key string, r produced) (stored, error) {
	info, err := p.store.Stat(ctx, key)
	if err != nil {
		return stored{}, err
	}
	if r.complete && uint64(info.Size) == r.fileSize {
		return stored{URL: key, FileHash: r.fileHash, FileSize: r.fileSize}, nil
	}
	rc, err := p.store.Open(ctx, key)
	if err != nil {
		return stored{}, err
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return stored{}, fmt.Errorf("hash existing %s: %w", key, err)
	}
	return stored{URL: key, FileHash: h.Sum(nil), FileSize: uint64(n)}, nil
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
