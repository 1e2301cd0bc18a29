package image

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/sidecar"
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

// uploadFile uploads one file with progress lines (blob.PutFile).
func uploadFile(ctx context.Context, s *State, store blob.Store, path, key string) error {
	progress := func(r io.Reader, size int64) io.Reader { return newProgressReader(r, s.Stream, key, size, s.Now) }
	return blob.PutFile(ctx, store, key, path, blob.PutOptions{ContentType: sidecar.ContentType(key)}, progress)
}
