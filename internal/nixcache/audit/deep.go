package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/nix-community/go-nix/pkg/narinfo"

	"github.com/socioprophet/sourceos/internal/nixcache/cachefmt"
)

// deepCheck runs checkNAR in one of the deepJobs slots.
func (a *auditor) deepCheck(ctx context.Context, ni *narinfo.NarInfo) error {
	return a.deepCheckTo(ctx, ni, nil)
}

// deepCheckTo is deepCheck that also writes the compressed bytes it reads
// to also (when not nil).
func (a *auditor) deepCheckTo(ctx context.Context, ni *narinfo.NarInfo, also io.Writer) error {
	select {
	case a.deepSlots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-a.deepSlots }()
	size := int64(ni.FileSize)
	if size == 0 { // the narinfo does not say: the listed size bounds the read
		info, err := a.store.Stat(ctx, ni.URL)
		if err != nil {
			return err
		}
		size = info.Size
	}
	return a.checkNAR(ctx, ni, size, also)
}

// checkNAR downloads, decompresses and hashes one NAR, reading at most
// one byte more than size (its FileSize, which the listing matched, or
// its listed size) and decompressing at most one byte more than NarSize.
func (a *auditor) checkNAR(ctx context.Context, ni *narinfo.NarInfo, size int64, also io.Writer) error {
	c, err := cachefmt.CodecFor(ni.Compression)
	if err != nil {
		return fmt.Errorf("NAR %s not checked: %w", ni.URL, err)
	}
	rc, err := a.store.Open(ctx, ni.URL)
	if err != nil {
		return err
	}
	defer rc.Close()
	compressed := &counter{}
	fileHash := sha256.New()
	sinks := []io.Writer{fileHash, compressed}
	if also != nil {
		sinks = append(sinks, also)
	}
	file := io.TeeReader(io.LimitReader(rc, size+1), io.MultiWriter(sinks...))
	dr, err := c.NewReader(file)
	if err != nil {
		return fmt.Errorf("NAR %s does not decompress: %w", ni.URL, cachefmt.DecodeError(err))
	}
	defer dr.Close()
	narHash := sha256.New()
	n, err := io.Copy(narHash, io.LimitReader(dr, int64(ni.NarSize)+1))
	switch {
	case err != nil:
		return fmt.Errorf("NAR %s does not decompress: %w", ni.URL, cachefmt.DecodeError(err))
	case uint64(n) > ni.NarSize:
		return fmt.Errorf("NAR %s decompresses past its NarSize (%d bytes); stopped there", ni.URL, ni.NarSize)
	case uint64(n) != ni.NarSize || !bytes.Equal(narHash.Sum(nil), ni.NarHash.Digest()):
		return fmt.Errorf("NAR %s: content does not match NarHash/NarSize", ni.URL)
	}
	if _, err := io.Copy(io.Discard, file); err != nil { // what the decoder left, for FileHash
		return fmt.Errorf("NAR %s: %w", ni.URL, err)
	}
	if int64(compressed.n) > size {
		return fmt.Errorf("NAR %s is longer than its %d bytes listed; stopped there", ni.URL, size)
	}
	if ni.FileHash != nil && !bytes.Equal(fileHash.Sum(nil), ni.FileHash.Digest()) {
		return fmt.Errorf("NAR %s: FileHash mismatch", ni.URL)
	}
	return nil
}

// counter counts bytes written.
type counter struct{ n uint64 }

func (c *counter) Write(b []byte) (int, error) {
	c.n += uint64(len(b))
	return len(b), nil
}
