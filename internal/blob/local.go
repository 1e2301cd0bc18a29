package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// tmpPrefix marks files being written; List never shows them.
const tmpPrefix = ".tmp-"

// Dir is a Store in a local directory. Keys map to files below it.
type Dir struct{ root string }

// OpenDir opens (creating it if needed) a directory store.
func OpenDir(dir string) (*Dir, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("blob: %w", err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("blob: %w", err)
	}
	return &Dir{root: abs}, nil
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
// object is never replaced).
func (d *Dir) Put(ctx context.Context, key string, r io.Reader, opt PutOptions) error {
	dst, err := d.file(key)
	if err != nil {
		return err
	}
	if opt.CreateOnly {
		if _, err := os.Lstat(dst); err == nil {
			return fmt.Errorf("%s: %w", d.URL(key), ErrExists)
		}
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("blob: %w", err)
	}
	tmp, err := d.writeTemp(ctx, dst, r)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	return d.commit(tmp, dst, key, opt.CreateOnly)
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

func (d *Dir) commit(tmp, dst, key string, createOnly bool) error {
	var err error
	if createOnly {
		err = os.Link(tmp, dst)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s: %w", d.URL(key), ErrExists)
		}
	} else {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		return fmt.Errorf("blob: %w", err)
	}
	return syncDir(filepath.Dir(dst))
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
	return Info{Key: key, Size: st.Size(), Updated: st.ModTime()}, nil
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
		return fn(Info{Key: key, Size: st.Size(), Updated: st.ModTime()})
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
