// Package nardump serialises a file system object as a NAR (the Nix
// archive format), byte for byte as nix-store --dump does, straight into
// a writer. It replaces go-nix's NAR writer (nar.DumpPath), which writes
// the same bytes (BenchmarkDump checks) but through a goroutine and a
// pipe, with a 32 KiB copy buffer allocated per file: on a tree of many
// small files ours is about four times as fast (and allocates 2 % of the
// bytes), on deep directories and symlink farms about twice, on large
// files the same (both are bound by reading and hashing). See
// docs/benchmarks.md.
package nardump

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
)

// narBufSize is the buffer a NAR is serialised through: file contents are
// read straight into it (bufio.Writer.ReadFrom) and leave it in large
// writes, so hashing and compression see few, big calls.
const narBufSize = 256 << 10

var narBufs = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, narBufSize) }}

// Dump writes the NAR serialisation of the file system object at path
// to w, as `nix-store --dump` does: strings are length-prefixed (64-bit
// little endian) and zero-padded to 8 bytes; directory entries come in
// byte order of their names (os.ReadDir's order); a regular file is
// executable when its owner may execute it.
func Dump(w io.Writer, path string) error {
	bw := narBufs.Get().(*bufio.Writer)
	bw.Reset(w)
	defer func() { bw.Reset(nil); narBufs.Put(bw) }()
	d := narDumper{w: bw}
	d.str("nix-archive-1")
	if err := d.node(path); err != nil {
		return err
	}
	if d.err != nil {
		return d.err
	}
	return bw.Flush()
}

// narDumper writes NAR tokens, remembering the first write error.
type narDumper struct {
	w   *bufio.Writer
	err error
}

var narPad [8]byte

func (d *narDumper) u64(n uint64) {
	if d.err == nil {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], n)
		_, d.err = d.w.Write(b[:])
	}
}

func (d *narDumper) pad(n uint64) {
	if r := n % 8; r != 0 && d.err == nil {
		_, d.err = d.w.Write(narPad[:8-r])
	}
}

func (d *narDumper) str(s string) {
	d.u64(uint64(len(s)))
	if d.err == nil {
		_, d.err = d.w.WriteString(s)
	}
	d.pad(uint64(len(s)))
}

func (d *narDumper) strs(ss ...string) {
	for _, s := range ss {
		d.str(s)
	}
}

// node writes the object at p: "(" "type" … ")".
func (d *narDumper) node(p string) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return fmt.Errorf("nar: %w", err)
	}
	d.strs("(", "type")
	switch m := fi.Mode(); {
	case m&os.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			return fmt.Errorf("nar: %w", err)
		}
		d.strs("symlink", "target", target)
	case m.IsDir():
		if err := d.dir(p); err != nil {
			return err
		}
	case m.IsRegular():
		if err := d.regular(p, fi); err != nil {
			return err
		}
	default:
		return fmt.Errorf("nar: %s: unsupported file type %s", p, m.Type())
	}
	d.str(")")
	return d.err
}

func (d *narDumper) dir(p string) error {
	d.str("directory")
	entries, err := readDir(p) // sorted by name, bytewise, as Nix sorts
	if err != nil {
		return fmt.Errorf("nar: %w", err)
	}
	for _, e := range entries {
		d.strs("entry", "(", "name", e.Name(), "node")
		if err := d.node(filepath.Join(p, e.Name())); err != nil {
			return err
		}
		d.str(")")
	}
	return d.err
}

func (d *narDumper) regular(p string, fi os.FileInfo) error {
	d.str("regular")
	if fi.Mode()&syscall.S_IXUSR != 0 {
		d.strs("executable", "")
	}
	d.str("contents")
	size := uint64(fi.Size())
	d.u64(size)
	if d.err != nil {
		return d.err
	}
	f, err := openRead(p)
	if err != nil {
		return fmt.Errorf("nar: %w", err)
	}
	defer f.Close()
	n, err := d.w.ReadFrom(io.LimitReader(f, int64(size)))
	if err != nil {
		return fmt.Errorf("nar: read %s: %w", p, err)
	}
	if uint64(n) != size {
		return fmt.Errorf("nar: %s changed while being read (%d bytes, expected %d)", p, n, size)
	}
	d.pad(size)
	return d.err
}

// openRead opens a file or directory for reading like os.Open, without
// asking whether it can join the network poller (it cannot): two system
// calls fewer per file of every path pushed.
func openRead(p string) (*os.File, error) {
	fd, err := syscall.Open(p, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

// readDir is os.ReadDir through openRead.
func readDir(p string) ([]os.DirEntry, error) {
	f, err := openRead(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries, err := f.ReadDir(-1)
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	return entries, err
}
