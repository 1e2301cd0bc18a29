package attest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// file is one sidecar to write.
type file struct {
	path string
	data []byte
}

// writeAll writes every file under a temporary name in its directory,
// then renames them into place in order (callers put signatures last). On
// any error it removes the temporary files and whatever it already renamed,
// so a failure leaves no partial set behind.
func writeAll(files []file) error {
	tmps := make([]string, 0, len(files))
	cleanup := func(renamed int) {
		for i, t := range tmps {
			if i < renamed {
				_ = os.Remove(files[i].path)
			} else {
				_ = os.Remove(t)
			}
		}
	}
	for _, f := range files {
		t, err := writeTemp(f)
		if err != nil {
			cleanup(0)
			return err
		}
		tmps = append(tmps, t)
	}
	for i, t := range tmps {
		if err := os.Rename(t, files[i].path); err != nil {
			cleanup(i)
			return fmt.Errorf("write %s: %w", files[i].path, err)
		}
	}
	return nil
}

func writeTemp(f file) (string, error) {
	dir, name := filepath.Split(f.path)
	tmp, err := os.CreateTemp(dir, "."+name+".partial-*")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", f.path, err)
	}
	_, err = tmp.Write(f.data)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return "", fmt.Errorf("write %s: %w", f.path, err)
	}
	return tmp.Name(), nil
}

// removeIfExists removes stale files (an older signature beside an artifact
// now written unsigned).
func removeIfExists(paths ...string) error {
	var errs []error
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
