package image

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/socioprophet/sourceos/internal/blob"
)

// uploadStep copies every artifact and its sidecars to GCS_PREFIX. Sidecars
// go first and the artifact last, so a reader who sees the image also finds
// its signature and provenance.
type uploadStep struct{}

func (uploadStep) String() string { return "upload to GCS_PREFIX" }

func (uploadStep) Skip(s *State) (bool, string) {
	if s.Cfg.GCSPrefix == "" {
		return true, "GCS_PREFIX not set"
	}
	return false, ""
}

func (uploadStep) Run(ctx context.Context, s *State) error {
	store, err := blob.Open(ctx, s.Cfg.GCSPrefix)
	if err != nil {
		return fmt.Errorf("GCS_PREFIX %s: %w", s.Cfg.GCSPrefix, err)
	}
	for _, a := range s.Artifacts {
		a.URLs = map[string]string{}
		for _, name := range append(append([]string{}, a.Sidecars...), a.Name) {
			if err := uploadFile(ctx, s, store, filepath.Join(s.Out, name), name); err != nil {
				return err
			}
			a.URLs[name] = store.URL(name)
			fmt.Fprintf(s.Stream, "    %s\n", store.URL(name))
		}
	}
	return nil
}

// uploadFile uploads one file with progress lines and checks the stored
// size; the GCS client also validates a CRC32C of the whole object.
func uploadFile(ctx context.Context, s *State, store blob.Store, path, key string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("upload %s: %w", key, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("upload %s: %w", key, err)
	}
	body := newProgressReader(f, s.Stream, key, st.Size(), s.Now)
	if err := store.Put(ctx, key, body, blob.PutOptions{ContentType: ContentType(key), SizeHint: st.Size()}); err != nil {
		return fmt.Errorf("upload %s: %w", key, err)
	}
	info, err := store.Stat(ctx, key)
	if err != nil {
		return fmt.Errorf("upload %s: check: %w", key, err)
	}
	if info.Size != st.Size() {
		return fmt.Errorf("upload %s: stored %d bytes, want %d", key, info.Size, st.Size())
	}
	return nil
}

// ContentType is the Content-Type an artifact or sidecar is uploaded with.
func ContentType(name string) string {
	switch filepath.Ext(name) {
	case ".json":
		return "application/json"
	case ".iso":
		return "application/x-iso9660-image"
	case ".sha256", ".minisig", ".ipxe":
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}
