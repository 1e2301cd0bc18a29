package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/sign"
)

// preflightSign loads the signing key, when one is configured, before the
// long build: a wrong password fails in a second, not after forty minutes.
type preflightSign struct{}

func (preflightSign) String() string { return "preflight: signing key" }

func (preflightSign) Skip(s *State) (bool, string) {
	if s.Cfg.SignSecretKey.IsSet() {
		return false, ""
	}
	if s.Cfg.RequireSignature {
		return false, ""
	}
	return true, "no SOURCEOS_SIGN_SECRET_KEY: artifacts will be unsigned"
}

func (preflightSign) Run(ctx context.Context, s *State) error {
	if !s.Cfg.SignSecretKey.IsSet() {
		return errors.New("SOURCEOS_REQUIRE_SIGNATURE=1 but no SOURCEOS_SIGN_SECRET_KEY (or _FILE) is set")
	}
	k, err := sign.ParseSecretKey([]byte(s.Cfg.SignSecretKey.Reveal()), s.Cfg.SignPassword.Reveal())
	if err != nil {
		return fmt.Errorf("signing key does not load: %w", err)
	}
	fmt.Fprintf(s.Stream, "    %s\n", k)
	return nil
}

// preflightUpload proves GCS_PREFIX is writable with a small probe object.
type preflightUpload struct{}

func (preflightUpload) String() string { return "preflight: upload destination" }

func (preflightUpload) Skip(s *State) (bool, string) {
	if s.Cfg.GCSPrefix == "" {
		return true, "GCS_PREFIX not set: nothing is uploaded"
	}
	return false, ""
}

func (preflightUpload) Run(ctx context.Context, s *State) error {
	store, err := blob.Open(ctx, s.Cfg.GCSPrefix)
	if err != nil {
		return fmt.Errorf("GCS_PREFIX %s: %w", s.Cfg.GCSPrefix, err)
	}
	key := ".preflight-" + s.probeID()
	if err := store.Put(ctx, key, bytes.NewReader([]byte("ok\n")), blob.PutOptions{ContentType: "text/plain"}); err != nil {
		return fmt.Errorf("GCS_PREFIX %s is not writable: %w", s.Cfg.GCSPrefix, err)
	}
	if err := store.Delete(ctx, key); err != nil {
		return fmt.Errorf("GCS_PREFIX %s: remove probe: %w", s.Cfg.GCSPrefix, err)
	}
	return nil
}

func (s *State) probeID() string {
	if s.Cfg.BuildID != "" {
		return s.Cfg.BuildID
	}
	return fmt.Sprintf("%d", s.Started.UnixNano())
}

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
