package blob

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
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
type Dir struct {
	root string
	// chmod: the process umask would hide objects from other users, so
	// each file is given mode 0644 explicitly.
	chmod bool
	// dirs holds the directories known to exist, so a Put does not ask.
	dirs sync.Map
	// Deferred writes are numbered as they return (written); synced is
	// the number up to which they are durable. commits groups the syncs.
	written, synced atomic.Uint64
	commits         Group
	// clock, when set (WithClock), stamps each written object's
	// modification time instead of the file system.
	clock func() time.Time
}

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
	d := &Dir{root: abs, chmod: umaskHides()}
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
	_ = binary.Write(h, binary.LittleEndian, fileIdentity(st))
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

// Put writes to a temporary file next to the target and then renames it
// into place (for CreateOnly, with a rename that refuses to replace, so an
// existing object is never replaced). Unless opt.Deferred, the file and
// then its directory are synced before Put returns; Deferred writes are
// made durable by Sync. Metadata is ignored.
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
	dir := filepath.Dir(dst)
	if err := d.ensureDir(dir); err != nil {
		return err
	}
	durable := !opt.Deferred || !deferrable
	tmp, err := d.writeTemp(ctx, dst, r, durable)
	if err != nil {
		return err
	}
	if err := d.commit(tmp, dst, key, opt); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if durable {
		if err := syncDir(dir); err != nil {
			return err
		}
	} else {
		d.written.Add(1)
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

// precheckSize is the size hint above which a create-only Put first asks
// whether the object exists: a large write is worth a look-up, a small
// one costs less to write and be refused.
const precheckSize = 1 << 20

// precheck fails early, before anything is written, a Put whose condition
// already does not hold; commit checks again.
func (d *Dir) precheck(dst, key string, opt PutOptions) error {
	switch {
	case opt.CreateOnly && (opt.SizeHint <= 0 || opt.SizeHint > precheckSize):
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

// ensureDir creates dir unless it is known to exist.
func (d *Dir) ensureDir(dir string) error {
	if _, ok := d.dirs.Load(dir); ok {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("blob: %w", err)
	}
	d.dirs.Store(dir, true)
	return nil
}

// copyBufs are the buffers objects are written through.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// writeTemp writes r to a new temporary file beside dst, synced if
// durable, and returns its name.
func (d *Dir) writeTemp(ctx context.Context, dst string, r io.Reader, durable bool) (string, error) {
	f, name, err := d.createTemp(dst)
	if err != nil {
		return "", fmt.Errorf("blob: %w", err)
	}
	buf := copyBufs.Get().(*[]byte)
	_, err = io.CopyBuffer(fdWriter{f}, ctxReader{ctx, r}, *buf)
	copyBufs.Put(buf)
	if err == nil && d.chmod {
		err = f.Chmod(0o644)
	}
	if err == nil && d.clock != nil {
		t := d.clock()
		err = os.Chtimes(name, t, t)
	}
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", fmt.Errorf("blob: write %s: %w", dst, err)
	}
	return name, nil
}

// createTemp creates a fresh temporary file beside dst. If dst's
// directory vanished since it was last seen, it is made again.
func (d *Dir) createTemp(dst string) (*os.File, string, error) {
	for attempt := 0; ; attempt++ {
		var rnd [6]byte
		_, _ = rand.Read(rnd[:]) // crypto/rand does not fail
		name := filepath.Join(filepath.Dir(dst), tmpPrefix+filepath.Base(dst)+"-"+hex.EncodeToString(rnd[:]))
		f, err := openFile(name, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL, 0o644)
		switch {
		case err == nil:
			return f, name, nil
		case attempt < 3 && errors.Is(err, fs.ErrNotExist):
			d.dirs.Delete(filepath.Dir(dst))
			if err := d.ensureDir(filepath.Dir(dst)); err != nil {
				return nil, "", err
			}
		case attempt < 3 && errors.Is(err, fs.ErrExist):
		default:
			return nil, "", err
		}
	}
}

// openFile opens name like os.OpenFile, without asking whether the file
// can join the network poller (a regular file cannot): two system calls
// fewer per object, which counts when a push writes thousands.
func openFile(name string, flags int, perm uint32) (*os.File, error) {
	fd, err := syscall.Open(name, flags|syscall.O_CLOEXEC, perm)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}

// fdWriter hides os.File's ReadFrom, so copies go through the pooled
// buffer in large writes.
type fdWriter struct{ f *os.File }

func (w fdWriter) Write(p []byte) (int, error) { return w.f.Write(p) }

func (d *Dir) commit(tmp, dst, key string, opt PutOptions) error {
	var err error
	switch {
	case opt.CreateOnly:
		err = renameNoReplace(tmp, dst)
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
	return nil
}

// Mark implements Syncer.
func (d *Dir) Mark() uint64 { return d.written.Load() }

// SyncTo implements Syncer with one syncfs(2) of the file system for every
// caller waiting when it starts (a group commit); a caller whose writes a
// sync already covered does not wait.
func (d *Dir) SyncTo(ctx context.Context, mark uint64) error {
	if err := ctx.Err(); err != nil || !deferrable || d.synced.Load() >= mark {
		return err
	}
	return d.commits.Run(func() error {
		upto := d.written.Load()
		if err := syncFS(d.root); err != nil {
			return err
		}
		for {
			old := d.synced.Load()
			if old >= upto || d.synced.CompareAndSwap(old, upto) {
				return nil
			}
		}
	})
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

// linkNoReplace moves tmp to dst unless dst exists (fs.ErrExist), with a
// hard link (which never replaces) and the removal of tmp.
func linkNoReplace(tmp, dst string) error {
	if err := os.Link(tmp, dst); err != nil {
		return err
	}
	_ = os.Remove(tmp) // a leftover is swept as stale (see StaleTempAge)
	return nil
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
	return d.walk(ctx, start, prefix, func(key string) bool { return strings.HasPrefix(key, prefix) }, fn)
}

// ListRange implements Store: one walk of the tree, filtered.
func (d *Dir) ListRange(ctx context.Context, startKey, end string, fn func(Info) error) error {
	return d.walk(ctx, d.root, startKey, func(key string) bool { return inRange(key, startKey, end) }, fn)
}

func (d *Dir) walk(ctx context.Context, start, what string, keep func(key string) bool, fn func(Info) error) error {
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
		if !keep(key) {
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
		return fmt.Errorf("blob: list %s: %w", d.URL(what), err)
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

// DeleteIf implements Store: the check and the removal happen under the
// directory lock that conditional replaces take (see replaceIf).
func (d *Dir) DeleteIf(ctx context.Context, key string, gen int64) error {
	p, err := d.file(key)
	if err != nil {
		return err
	}
	if gen == 0 {
		return fmt.Errorf("blob: delete %s: no generation given", d.URL(key))
	}
	unlock, err := lockDir(filepath.Dir(p))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", d.URL(key), ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("blob: %w", err)
	}
	defer unlock()
	st, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: %w", d.URL(key), ErrNotFound)
	case err != nil:
		return fmt.Errorf("blob: %w", err)
	case generation(st) != gen:
		return fmt.Errorf("%s: %w", d.URL(key), ErrChanged)
	}
	if err := os.Remove(p); err != nil {
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
