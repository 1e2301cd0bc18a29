package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/signature"
)

// preflightNix checks that nix runs before anything long starts.
type preflightNix struct{}

func (preflightNix) String() string { return "preflight: nix" }

func (preflightNix) Run(ctx context.Context, s *State) error {
	res, err := s.Run.Run(ctx, execx.Cmd{Name: "nix", Args: []string{"--version"}})
	if err != nil {
		return fmt.Errorf("nix is not usable (install it: bash scripts/ensure-tools.sh): %w", err)
	}
	s.NixVersion = strings.TrimSpace(string(res.Stdout))
	fmt.Fprintf(s.Stream, "    %s\n", s.NixVersion)
	return nil
}

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
	k, err := signature.ParseSecretKey([]byte(s.Cfg.SignSecretKey.Reveal()), s.Cfg.SignPassword.Reveal())
	if err != nil {
		return fmt.Errorf("signing key does not load: %w", err)
	}
	defer k.Wipe()
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
