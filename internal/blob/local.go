package blob

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// tmpPrefix marks files being written; List never shows them.
const tmpPrefix = ".tmp-"

// StaleTempAge is how old (since its last write) a temporary file must be
// for OpenDir to remove it as the leftover of a writer that died (SIGKILL,
// power loss). A live writer writes its temporary file until it renames or
// links it into place, moments after the last write, so the age only has
// to exceed the longest stall of a writer's source; a writer stalled
// longer than this loses its temporary file and its Put fails, storing
// nothing.
const StaleTempAge = time.Hour

// Dir is a Store in a local directory. Keys map to files below it.
type Dir struct{ root string }

// OpenDir opens (creating it if needed) a directory store and removes the
// temporary files that writers which died left behind (see StaleTempAge).
func OpenDir(dir string) (*Dir, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("blob: %w", err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("blob: %w", err)
	}
	d := &Dir{root: abs}
	d.sweep(time.Now().Add(-StaleTempAge))
	return d, nil
}

// sweep removes the temporary files last written before cutoff. It is
// housekeeping: what it cannot read or remove it leaves.
func (d *Dir) sweep(cutoff time.Time) {
	_ = filepath.WalkDir(d.root, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasPrefix(e.Name(), tmpPrefix) {
			return nil
		}
		if st, err := e.Info(); err == nil && st.ModTime().Before(cutoff) {
			_ = os.Remove(p)
		}
		return nil
	})
}

// Features implements Store: a directory keeps neither checksums nor
// metadata (Checksum computes the MD5 by reading the file).
func (d *Dir) Features() Features { return Features{} }

// generation names a version of a file: its device, inode and change
// time (which a rename or link also sets), modification time and size.
func generation(st fs.FileInfo) int64 {
	h := fnv.New64a()
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		_ = binary.Write(h, binary.LittleEndian, []int64{int64(s.Dev), int64(s.Ino), s.Ctim.Sec, s.Ctim.Nsec})
	}
	_ = binary.Write(h, binary.LittleEndian, []int64{st.ModTime().UnixNano(), st.Size()})
	if g := int64(h.Sum64() &^ (1 << 63)); g != 0 {
		return g
	}
	return 1
}

func fileInfo(key string, st fs.FileInfo) Info {
	return Info{Key: key, Size: st.Size(), Updated: st.ModTime(), Generation: generation(st)}
}

// Root is the store's directory.
func (d *Dir) Root() string { return d.root }

func (d *Dir) file(key string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	return filepath.Join(d.root, filepath.FromSlash(key)), nil
}

// Put writes to a temporary file next to the target, syncs it and then
// renames it into place (or hard-links it, for CreateOnly, so an existing
// object is never replaced). Metadata is ignored.
func (d *Dir) Put(ctx context.Context, key string, r io.Reader, opt PutOptions) error {
	if err := checkPut(key, opt); err != nil {
		return err
	}
	dst, err := d.file(key)
	if err != nil {
		return err
	}
	if err := d.precheck(dst, key, opt); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("blob: %w", err)
	}
	tmp, err := d.writeTemp(ctx, dst, r)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := d.commit(tmp, dst, key, opt); err != nil {
		return err
	}
	if opt.Stored != nil {
		st, err := os.Stat(dst)
		if err != nil {
			return fmt.Errorf("blob: %w", err)
		}
		*opt.Stored = fileInfo(key, st)
	}
	return nil
}

// precheck fails early, before anything is written, a Put whose condition
// already does not hold; commit checks again.
func (d *Dir) precheck(dst, key string, opt PutOptions) error {
	switch {
	case opt.CreateOnly:
		if _, err := os.Lstat(dst); err == nil {
			return fmt.Errorf("%s: %w", d.URL(key), ErrExists)
		}
	case opt.IfGeneration != 0:
		if st, err := os.Stat(dst); err != nil || generation(st) != opt.IfGeneration {
			return fmt.Errorf("%s: %w", d.URL(key), ErrChanged)
		}
	}
	return nil
}

func (d *Dir) writeTemp(ctx context.Context, dst string, r io.Reader) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(dst), tmpPrefix+filepath.Base(dst)+"-*")
	if err != nil {
		return "", fmt.Errorf("blob: %w", err)
	}
	_, err = io.Copy(f, ctxReader{ctx, r})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("blob: write %s: %w", dst, err)
	}
	return f.Name(), nil
}

func (d *Dir) commit(tmp, dst, key string, opt PutOptions) error {
	var err error
	switch {
	case opt.CreateOnly:
		err = os.Link(tmp, dst)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s: %w", d.URL(key), ErrExists)
		}
	case opt.IfGeneration != 0:
		err = d.replaceIf(tmp, dst, key, opt.IfGeneration)
	default:
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		if errors.Is(err, ErrChanged) {
			return err
		}
		return fmt.Errorf("blob: %w", err)
	}
	return syncDir(filepath.Dir(dst))
}

// replaceIf renames tmp over dst if dst is still at generation gen. The
// check and the rename happen under an exclusive lock (flock) of dst's
// directory, which every conditional replace in that directory takes, so
// of two writers that inspected the same version only one replaces it.
// Unconditional writes and deletes do not take the lock.
func (d *Dir) replaceIf(tmp, dst, key string, gen int64) error {
	unlock, err := lockDir(filepath.Dir(dst))
	if err != nil {
		return err
	}
	defer unlock()
	st, err := os.Stat(dst)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && generation(st) != gen) {
		return fmt.Errorf("%s: %w", d.URL(key), ErrChanged)
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// lockDir takes an exclusive flock of dir until the returned function is
// called.
func lockDir(dir string) (unlock func(), err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("blob: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("blob: sync %s: %w", dir, err)
	}
	return nil
}

// Open implements Store.
func (d *Dir) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	p, err := d.file(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", d.URL(key), ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("blob: %w", err)
	}
	return f, nil
}

// Stat implements Store.
func (d *Dir) Stat(ctx context.Context, key string) (Info, error) {
	p, err := d.file(key)
	if err != nil {
		return Info{}, err
	}
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && st.IsDir()) {
		return Info{}, fmt.Errorf("%s: %w", d.URL(key), ErrNotFound)
	}
	if err != nil {
		return Info{}, fmt.Errorf("blob: %w", err)
	}
	return fileInfo(key, st), nil
}

// checksum is Stat with the MD5 of the file's content, read from the same
// open file that is described.
func (d *Dir) checksum(ctx context.Context, key string) (Info, error) {
	rc, err := d.Open(ctx, key)
	if err != nil {
		return Info{}, err
	}
	f := rc.(*os.File)
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Info{}, fmt.Errorf("blob: %w", err)
	}
	if st.IsDir() {
		return Info{}, fmt.Errorf("%s: %w", d.URL(key), ErrNotFound)
	}
	h := md5.New()
	if _, err := io.Copy(h, ctxReader{ctx, f}); err != nil {
		return Info{}, fmt.Errorf("blob: read %s: %w", d.URL(key), err)
	}
	info := fileInfo(key, st)
	info.MD5 = h.Sum(nil)
	return info, nil
}

// List implements Store.
func (d *Dir) List(ctx context.Context, prefix string, fn func(Info) error) error {
	start := d.root
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		start = filepath.Join(d.root, filepath.FromSlash(prefix[:i]))
	}
	err := filepath.WalkDir(start, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if e.IsDir() || strings.HasPrefix(e.Name(), tmpPrefix) {
			return ctx.Err()
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		st, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		return fn(fileInfo(key, st))
	})
	if err != nil {
		return fmt.Errorf("blob: list %s: %w", d.URL(prefix), err)
	}
	return nil
}

// Delete implements Store.
func (d *Dir) Delete(ctx context.Context, key string) error {
	p, err := d.file(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob: %w", err)
	}
	return nil
}

// URL implements Store.
func (d *Dir) URL(key string) string {
	if key == "" {
		return "file://" + filepath.ToSlash(d.root)
	}
	return "file://" + filepath.ToSlash(d.root) + "/" + key
}

// ctxReader stops a copy when ctx is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
