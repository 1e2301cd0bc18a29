package cachefmt

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// xzGuard passes an xz file through unchanged while following its
// structure (the .xz file format 1.0: streams of blocks, each a header and
// LZMA2 chunks, then an index and a footer; stream padding between
// streams), and fails before handing over a block header whose LZMA2
// dictionary is larger than max. It checks framing only as far as it needs
// to find the next block header; the decoder checks the rest (CRCs, index
// contents).
type xzGuard struct {
	src  *bufio.Reader
	max  int64
	out  []byte       // structural bytes parsed and not yet read
	skip int64        // payload bytes to pass through unparsed
	next func() error // parses the next structural element
	err  error

	check     byte   // the stream's check type
	blockData int64  // bytes of the current block's LZMA2 data
	indexSize int64  // bytes of the index read so far
	indexLeft uint64 // index integers still to read
}

var errXZFormat = errors.New("xz: malformed file")

func newXZGuard(r io.Reader, max int64) *xzGuard {
	g := &xzGuard{src: bufio.NewReaderSize(r, 16<<10), max: max}
	g.next = g.streamHeader
	return g
}

func (g *xzGuard) Read(p []byte) (int, error) {
	for len(g.out) == 0 && g.skip == 0 {
		if g.err != nil {
			return 0, g.err
		}
		g.out = g.out[:0]
		g.err = g.next()
	}
	if len(g.out) > 0 {
		n := copy(p, g.out)
		g.out = g.out[n:]
		return n, nil
	}
	n, err := g.src.Read(p[:min(int64(len(p)), g.skip)])
	g.skip -= int64(n)
	if err == io.EOF && g.skip > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err == io.EOF {
		err = nil
	}
	return n, err
}

// take reads exactly n structural bytes, queues them for the reader and
// returns them.
func (g *xzGuard) take(n int) ([]byte, error) {
	start := len(g.out)
	g.out = append(g.out, make([]byte, n)...)
	got, err := io.ReadFull(g.src, g.out[start:])
	g.out = g.out[:start+got]
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, err
	}
	return g.out[start:], nil
}

// varint reads one xz multibyte integer (at most 9 bytes).
func (g *xzGuard) varint() (uint64, error) {
	var v uint64
	for i := range 9 {
		b, err := g.take(1)
		if err != nil {
			return 0, err
		}
		v |= uint64(b[0]&0x7f) << (7 * i)
		if b[0]&0x80 == 0 {
			return v, nil
		}
	}
	return 0, errXZFormat
}

func (g *xzGuard) streamHeader() error {
	h, err := g.take(12)
	if err != nil {
		return err
	}
	if !bytes.Equal(h[:6], []byte{0xfd, '7', 'z', 'X', 'Z', 0}) || h[6] != 0 || h[7] > 0x0f {
		return errXZFormat
	}
	g.check, g.next = h[7], g.blockOrIndex
	return nil
}

// blockOrIndex reads a block header, refusing a dictionary over the
// limit, or the index indicator.
func (g *xzGuard) blockOrIndex() error {
	b, err := g.take(1)
	if err != nil {
		return err
	}
	if b[0] == 0 {
		return g.index()
	}
	rest, err := g.take((int(b[0])+1)*4 - 1)
	if err != nil {
		return err
	}
	dict, err := lzma2Dict(rest)
	if err != nil {
		return err
	}
	if dict > g.max {
		return fmt.Errorf("xz block declares a %d MiB dictionary: %w", dict>>20, ErrDecodeLimit)
	}
	g.blockData, g.next = 0, g.chunk
	return nil
}

// lzma2Dict returns the dictionary size of a block header (without its
// size byte) whose last filter is LZMA2.
func lzma2Dict(h []byte) (int64, error) {
	r := bytes.NewReader(h[1 : len(h)-4]) // flags first, CRC32 last
	flags := h[0]
	if flags&0x3c != 0 {
		return 0, errXZFormat
	}
	for _, present := range []bool{flags&0x40 != 0, flags&0x80 != 0} { // compressed, uncompressed size
		if !present {
			continue
		}
		if _, err := binary.ReadUvarint(r); err != nil {
			return 0, errXZFormat
		}
	}
	var dict int64 = -1
	for i := 0; i <= int(flags&3); i++ {
		id, err1 := binary.ReadUvarint(r)
		size, err2 := binary.ReadUvarint(r)
		if err1 != nil || err2 != nil || size > uint64(r.Len()) {
			return 0, errXZFormat
		}
		props := make([]byte, size)
		_, _ = r.Read(props)
		dict = -1
		if id == 0x21 && size == 1 {
			dict = lzma2DictSize(props[0])
		}
	}
	if dict < 0 {
		return 0, fmt.Errorf("%w: the last filter is not LZMA2", errXZFormat)
	}
	return dict, nil
}

// lzma2DictSize decodes an LZMA2 dictionary size byte.
func lzma2DictSize(c byte) int64 {
	switch {
	case c > 40:
		return 1 << 62 // invalid: refused as too large
	case c == 40:
		return 1<<32 - 1
	}
	return int64(2|c&1) << (c/2 + 11)
}

// chunk reads the header of one LZMA2 chunk and passes its payload.
func (g *xzGuard) chunk() error {
	b, err := g.take(1)
	if err != nil {
		return err
	}
	c := b[0]
	switch {
	case c == 0: // end of the block's data
		g.blockData++
		return g.blockEnd()
	case c == 1 || c == 2: // uncompressed chunk
		h, err := g.take(2)
		if err != nil {
			return err
		}
		g.skip = int64(binary.BigEndian.Uint16(h)) + 1
		g.blockData += 3 + g.skip
	case c >= 0x80: // LZMA chunk: unpacked size, packed size, maybe properties
		n := 4
		if c >= 0xc0 {
			n = 5
		}
		h, err := g.take(n)
		if err != nil {
			return err
		}
		g.skip = int64(binary.BigEndian.Uint16(h[2:4])) + 1
		g.blockData += 1 + int64(n) + g.skip
	default:
		return errXZFormat
	}
	return nil
}

// blockEnd reads the block padding and check.
func (g *xzGuard) blockEnd() error {
	if _, err := g.take(int((4 - g.blockData%4) % 4)); err != nil {
		return err
	}
	if _, err := g.take(checkSize(g.check)); err != nil {
		return err
	}
	g.next = g.blockOrIndex
	return nil
}

// checkSize is the size of a block check of type c.
func checkSize(c byte) int {
	if c == 0 {
		return 0
	}
	return 4 << ((c - 1) / 3)
}

// index reads the record count of the index (after its indicator byte);
// indexRecords reads the records, a batch at a time, then the padding, the
// CRC32 and the stream footer.
func (g *xzGuard) index() error {
	count, err := g.varint()
	if err != nil {
		return err
	}
	if count > 1<<40 {
		return errXZFormat
	}
	g.indexSize = 1 + int64(varintLen(count))
	g.indexLeft = 2 * count // unpadded and uncompressed size of each block
	g.next = g.indexRecords
	return nil
}

func (g *xzGuard) indexRecords() error {
	for i := 0; i < 4096 && g.indexLeft > 0; i++ {
		v, err := g.varint()
		if err != nil {
			return err
		}
		g.indexSize += int64(varintLen(v))
		g.indexLeft--
	}
	if g.indexLeft > 0 {
		return nil
	}
	if _, err := g.take(int((4-g.indexSize%4)%4) + 4 + 12); err != nil { // padding, CRC32, footer
		return err
	}
	g.next = g.streamPadding
	return nil
}

func varintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// streamPadding reads null padding after a stream, then another stream or
// the end of the file.
func (g *xzGuard) streamPadding() error {
	b, err := g.src.Peek(1)
	if err == io.EOF {
		return io.EOF
	}
	if err != nil {
		return err
	}
	if b[0] != 0 {
		return g.streamHeader()
	}
	_, err = g.take(4)
	return err
}
