package nixcache

import (
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// codec is one NAR compression as a binary cache names it.
type codec struct {
	name, ext string
	newWriter func(w io.Writer) (io.WriteCloser, error)
	newReader func(r io.Reader) (io.ReadCloser, error)
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

func codecFor(name string) (codec, error) {
	switch name {
	case "zstd", "":
		return codec{name: "zstd", ext: ".nar.zst",
			newWriter: func(w io.Writer) (io.WriteCloser, error) {
				e := zstdEncoders.Get().(*zstd.Encoder)
				e.Reset(w)
				return pooledZstd{e}, nil
			},
			newReader: func(r io.Reader) (io.ReadCloser, error) {
				d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)))
				if err != nil {
					return nil, err
				}
				return d.IOReadCloser(), nil
			}}, nil
	case "xz":
		return codec{name: "xz", ext: ".nar.xz",
			newWriter: func(w io.Writer) (io.WriteCloser, error) { return xz.NewWriter(w) },
			newReader: func(r io.Reader) (io.ReadCloser, error) {
				x, err := xz.NewReader(r)
				return io.NopCloser(x), err
			}}, nil
	case "none":
		return codec{name: "none", ext: ".nar",
			newWriter: func(w io.Writer) (io.WriteCloser, error) { return nopCloser{w}, nil },
			newReader: func(r io.Reader) (io.ReadCloser, error) { return io.NopCloser(r), nil }}, nil
	}
	return codec{}, fmt.Errorf("unsupported NAR compression %q (want zstd, xz or none)", name)
}
