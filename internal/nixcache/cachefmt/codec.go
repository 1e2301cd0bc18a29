package cachefmt

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
)

// Codec is one NAR compression as a binary cache names it.
type Codec struct {
	// Name is the narinfo's Compression; Ext the NAR object's suffix.
	Name, Ext string
	// NewWriter compresses into w.
	NewWriter func(w io.Writer) (io.WriteCloser, error)
	// NewReader decodes within MaxDecodeWindow (see there).
	NewReader func(r io.Reader) (io.ReadCloser, error)
}

// MaxDecodeWindow bounds the history a NAR decoder may keep: the zstd
// window and the xz (LZMA2) dictionary that a NAR declares, which its
// decoder allocates before it decodes a byte. 8 MiB is what Nix writes
// (xz preset 6; zstd at its default levels uses 2 MiB or less) and more
// than our own NARs use (zstd 1 MiB, xz 8 MiB). A NAR that declares more is
// refused rather than decoded (ErrDecodeLimit), so one decoder holds at
// most about 8 MiB whatever the NAR says.
const MaxDecodeWindow = 8 << 20

// ErrDecodeLimit says a NAR needs a larger window than MaxDecodeWindow.
var ErrDecodeLimit = fmt.Errorf("needs a window or dictionary larger than the %d MiB a decoder may use", MaxDecodeWindow>>20)

// DecodeError names what went wrong when a NAR would not decode.
func DecodeError(err error) error {
	if errors.Is(err, zstd.ErrWindowSizeExceeded) || errors.Is(err, zstd.ErrDecoderSizeExceeded) {
		return fmt.Errorf("%w (%v)", ErrDecodeLimit, err)
	}
	return err
}

var zstdEncoders = sync.Pool{New: func() any {
	e, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithWindowSize(1<<20), zstd.WithLowerEncoderMem(true),
		zstd.WithEncoderCRC(false))
	if err != nil {
		panic(err) // only on invalid options
	}
	return e
}}

// pooledZstd returns its encoder to the pool on Close.
type pooledZstd struct{ *zstd.Encoder }

func (p pooledZstd) Close() error {
	err := p.Encoder.Close()
	p.Encoder.Reset(nil)
	zstdEncoders.Put(p.Encoder)
	return err
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// CodecFor is the codec a narinfo names (zstd when empty).
func CodecFor(name string) (Codec, error) {
	switch name {
	case "zstd", "":
		return Codec{Name: "zstd", Ext: ".nar.zst",
			NewWriter: func(w io.Writer) (io.WriteCloser, error) {
				e := zstdEncoders.Get().(*zstd.Encoder)
				e.Reset(w)
				return pooledZstd{e}, nil
			},
			NewReader: func(r io.Reader) (io.ReadCloser, error) {
				// One block in flight, low-memory buffers, and the window
				// bound twice: WithDecoderMaxMemory is what bounds the
				// window of a single-segment frame (its whole content).
				d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
					zstd.WithDecoderMaxWindow(MaxDecodeWindow), zstd.WithDecoderMaxMemory(MaxDecodeWindow))
				if err != nil {
					return nil, err
				}
				return d.IOReadCloser(), nil
			}}, nil
	case "xz":
		return Codec{Name: "xz", Ext: ".nar.xz",
			NewWriter: func(w io.Writer) (io.WriteCloser, error) { return xz.NewWriter(w) },
			NewReader: func(r io.Reader) (io.ReadCloser, error) {
				// ulikunitz/xz takes ReaderConfig.DictCap as a floor and
				// allocates whatever larger dictionary a block declares
				// (up to 4 GiB): the guard refuses those first.
				x, err := xz.ReaderConfig{DictCap: lzma.MinDictCap}.NewReader(newXZGuard(r, MaxDecodeWindow))
				return io.NopCloser(x), err
			}}, nil
	case "none":
		return Codec{Name: "none", Ext: ".nar",
			NewWriter: func(w io.Writer) (io.WriteCloser, error) { return nopCloser{w}, nil },
			NewReader: func(r io.Reader) (io.ReadCloser, error) { return io.NopCloser(r), nil }}, nil
	}
	return Codec{}, fmt.Errorf("unsupported NAR compression %q (want zstd, xz or none)", name)
}
