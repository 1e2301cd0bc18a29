package push

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/nix-community/go-nix/pkg/narinfo/signature"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/nixcache/cachefmt"
	"github.com/socioprophet/sourceos/internal/nixcache/lease"
)

// Options configure a push.
type Options struct {
	// Open opens the cache's store, with throttle told of every answer
	// that asks the client to slow down (the push's limiter).
	Open func(ctx context.Context, throttle blob.Throttle) (blob.Store, error)
	// SecretKey signs narinfos, push proofs and roots. It is kept in
	// memory only.
	SecretKey *signature.SecretKey
	// Compression is zstd (default), xz or none.
	Compression string
	// Upstreams are caches whose paths are not pushed; empty disables the
	// check. UpstreamTimeout bounds the reachability probe of each
	// (default 3s).
	Upstreams       []string
	UpstreamTimeout time.Duration
	// Jobs is the most requests a push keeps in flight (default 256); it
	// starts lower and follows the link (see limiter).
	Jobs int
	// Retry tunes the retries of the writes a push retries itself.
	Retry blob.Retry
	// Root names the root a push records.
	Root RootOptions
	// Runner runs nix path-info for Push.
	Runner     execx.Runner
	Log        *slog.Logger
	Progress   Progress
	HTTPClient *http.Client
	// Now is this machine's clock (default time.Now). It names roots and
	// times summaries; for the GC lease it only measures elapsed time
	// from a reading of the store's clock (lease.Clock).
	Now func() time.Time
	// Window is the GC protocol's window (default lease.Window): how long
	// a push relies on a check that found no GC running, and how long it
	// waits after recording what it relies on.
	Window time.Duration
	// ListThreshold is the batch size from which presence waits for the
	// listing of the cache instead of asking about each path (default
	// 32).
	ListThreshold int
	// ObserveLimit, when set, is told every new concurrency limit.
	ObserveLimit func(limit int)
}

// RootOptions say how a push names its root.
type RootOptions struct {
	// Name is the root's name (cachefmt.RootNameRe); default "push".
	Name string
	// BuildID identifies the build; default a random one per push.
	BuildID string
	// Pin makes the root one GC never collects (release builds).
	Pin bool
}

func (o Options) withDefaults() Options {
	if o.Compression == "" {
		o.Compression = "zstd"
	}
	if o.Jobs <= 0 {
		o.Jobs = 256
	}
	if o.UpstreamTimeout <= 0 {
		o.UpstreamTimeout = 3 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Progress == nil {
		o.Progress = nopProgress{}
	}
	if o.HTTPClient == nil {
		o.HTTPClient = http.DefaultClient
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Window <= 0 {
		o.Window = lease.Window
	}
	if o.ListThreshold <= 0 {
		o.ListThreshold = 32
	}
	return o
}

func (o Options) check() (cachefmt.Codec, error) {
	if o.Open == nil {
		return cachefmt.Codec{}, errors.New("cache push: no store")
	}
	if o.SecretKey == nil {
		return cachefmt.Codec{}, errors.New("cache push: no signing key")
	}
	return cachefmt.CodecFor(o.Compression)
}
