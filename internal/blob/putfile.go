package blob

import (
	"context"
	"fmt"
	"io"
	"os"
)

// PutFile uploads the file at path to key and checks that the store kept
// as many bytes as the file has (the GCS client also checks a CRC32C of
// the whole object). wrap, when not nil, wraps the file's reader (a
// progress reporter); opt.SizeHint is set from the file.
func PutFile(ctx context.Context, s Store, key, path string, opt PutOptions, wrap func(r io.Reader, size int64) io.Reader) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("upload %s: %w", key, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("upload %s: %w", key, err)
	}
	var body io.Reader = f
	if wrap != nil {
		body = wrap(f, st.Size())
	}
	opt.SizeHint = st.Size()
	if err := s.Put(ctx, key, body, opt); err != nil {
		return fmt.Errorf("upload %s: %w", key, err)
	}
	info, err := s.Stat(ctx, key)
	if err != nil {
		return fmt.Errorf("upload %s: check: %w", key, err)
	}
	if info.Size != st.Size() {
		return fmt.Errorf("upload %s: stored %d bytes, want %d", key, info.Size, st.Size())
	}
	return nil
}
