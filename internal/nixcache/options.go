// Package nixcache publishes Nix store closures as a Nix binary cache on a
// blob.Store (a GCS bucket or a local directory), collects and audits such
// caches. It is the configuration-facing side of the subsystems below it,
// each with its own options, over the shared on-bucket format (cachefmt)
// and the GC protocol (lease):
//
//   - push: publishes closures under the closure invariant, with push
//     proofs, and records roots (nardump serialises the NARs);
//   - watch: pushes paths while Nix builds them (a post-build hook);
//   - gc: keeps what roots reach and deletes the rest;
//   - audit: cache:verify and cache:verifyDeep.
package nixcache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/nix-community/go-nix/pkg/narinfo/signature"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/nixcache/gc"
	"github.com/socioprophet/sourceos/internal/nixcache/push"
)

// Options configure a push, an audit or the nix.conf printer.
type Options struct {
	// Bucket and Prefix name a GCS cache, gs://Bucket/Prefix.
	Bucket, Prefix string
	// Dir is a local directory cache, used when Bucket is empty.
	Dir string
	// Store overrides Bucket and Dir (tests, callers holding a store).
	Store blob.Store
	// SecretKey is the signing key, Nix "name:base64" format. It is kept in
	// memory only.
	SecretKey config.Secret
	// PubKey is the cache's public key ("name:base64"), for Verify and
	// NixConf; derived from SecretKey when empty.
	PubKey string
	// URL is the cache's public URL, for NixConf.
	URL string
	// Compression is zstd (default), xz or none.
	Compression string
	// Upstreams are caches whose paths are not pushed; empty disables the
	// check.
	Upstreams []string
	// UpstreamTimeout bounds the reachability probe of each upstream
	// (default 3s).
	UpstreamTimeout time.Duration
	// Strict makes PushBestEffort return push failures.
	Strict bool
	// Jobs is the most requests a push keeps in flight (default 256); it
	// starts lower and follows the link (see package push).
	Jobs int
	// Retry tunes the retries of a remote store.
	Retry blob.Retry
	// Root names the root a push records (see Root).
	Root RootOptions
	// GC tunes cache:gc.
	GC GCOptions

	Runner     execx.Runner
	Log        *slog.Logger
	Progress   Progress
	HTTPClient *http.Client
	// Now is this machine's clock (default time.Now). It names roots and
	// times summaries; for leases and ages it only measures elapsed time
	// from a reading of the store's clock (lease.Clock): an offset (a
	// skewed machine, a test) cancels out; a clock that stands still makes
	// every age look younger.
	Now func() time.Time
}

// FromConfig builds Options from the run's configuration.
func FromConfig(c *config.Config, run execx.Runner, log *slog.Logger) Options {
	return Options{
		Bucket: c.CacheBucket, Prefix: c.CachePrefix, Dir: c.CacheDir,
		SecretKey: c.CacheSecretKey, PubKey: c.CachePubKey, URL: c.CacheURL,
		Compression: c.CacheCompression, Upstreams: c.CacheUpstreams,
		Strict: c.CacheStrict, Jobs: c.CacheJobs, Runner: run, Log: log,
		Root: RootOptions{Name: c.CacheRoot, BuildID: c.BuildID, Pin: c.CacheRootPin},
		GC: GCOptions{KeepLast: c.CacheGCKeepLast, KeepDays: c.CacheGCKeepDays,
			Grace: time.Duration(c.CacheGCGraceHours) * time.Hour, DryRun: c.CacheGCDryRun},
	}
}

// RootOptions say how a push names its root.
type RootOptions = push.RootOptions

// GCOptions tune cache:gc (see package gc).
type GCOptions = gc.Policy

// Test hooks (export_test.go): the GC protocol's window on both sides,
// the push's listing threshold and limit observer, GC's plan and delete
// hooks.
var (
	testWindow        time.Duration
	testListThreshold int
	testObserveLimit  func(int)
	testAfterPlan     func()
	testBeforeDelete  func(string)
)

// pushOptions is the push subsystem's share of o (validated: checkPush).
func (o Options) pushOptions() (push.Options, error) {
	sk, err := o.secretKey()
	if err != nil {
		return push.Options{}, err
	}
	return push.Options{
		Open:      func(ctx context.Context, t blob.Throttle) (blob.Store, error) { return o.open(ctx, t) },
		SecretKey: &sk, Compression: o.Compression, Upstreams: o.Upstreams, UpstreamTimeout: o.UpstreamTimeout,
		Jobs: o.Jobs, Retry: o.Retry, Root: o.Root, Runner: o.Runner, Log: o.Log, Progress: o.Progress,
		HTTPClient: o.HTTPClient, Now: o.Now, Window: testWindow, ListThreshold: testListThreshold,
		ObserveLimit: testObserveLimit,
	}, nil
}

// NotConfiguredError says which variables must be set.
type NotConfiguredError struct{ Missing []string }

func (e *NotConfiguredError) Error() string {
	return "Nix binary cache not configured: set " + strings.Join(e.Missing, " and ")
}

// ErrNotConfigured matches every *NotConfiguredError with errors.Is.
var ErrNotConfigured = errors.New("Nix binary cache not configured")

// Is makes errors.Is(err, ErrNotConfigured) true.
func (e *NotConfiguredError) Is(target error) bool { return target == ErrNotConfigured }

// withDefaults fills in what this package itself uses; the subsystems
// (push, audit, gc) default the rest of what they are given.
func (o Options) withDefaults() Options {
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Prefix == "" {
		o.Prefix = "nix-cache"
	}
	return o
}

// Location is where the cache lives: gs://bucket/prefix or a directory.
func (o Options) Location() (string, error) {
	switch {
	case o.Store != nil:
		return o.Store.URL(""), nil
	case o.Bucket != "":
		p := strings.Trim(o.Prefix, "/")
		if p == "" {
			p = "nix-cache"
		}
		return "gs://" + path.Join(o.Bucket, p), nil
	case o.Dir != "":
		return o.Dir, nil
	}
	return "", &NotConfiguredError{Missing: []string{"NIX_CACHE_BUCKET or NIX_CACHE_DIR"}}
}

// checkPush reports what a push lacks.
func (o Options) checkPush() error {
	var missing []string
	if _, err := o.Location(); err != nil {
		missing = append(missing, "NIX_CACHE_BUCKET or NIX_CACHE_DIR")
	}
	if !o.SecretKey.IsSet() {
		missing = append(missing, "NIX_CACHE_SECRET_KEY")
	}
	if len(missing) > 0 {
		return &NotConfiguredError{Missing: missing}
	}
	return nil
}

// open returns the configured store (throttle: told of throttling).
func (o Options) open(ctx context.Context, throttle blob.Throttle) (blob.Store, error) {
	if o.Store != nil {
		return o.Store, nil
	}
	loc, err := o.Location()
	if err != nil {
		return nil, err
	}
	opts := []blob.Option{blob.WithRetry(o.Retry)}
	if throttle != nil {
		opts = append(opts, blob.WithThrottle(throttle))
	}
	return blob.Open(ctx, loc, opts...)
}

// secretKey parses the signing key without ever quoting it.
func (o Options) secretKey() (signature.SecretKey, error) {
	sk, err := signature.LoadSecretKey(strings.TrimSpace(o.SecretKey.Reveal()))
	if err != nil {
		return signature.SecretKey{}, errors.New("NIX_CACHE_SECRET_KEY is not a Nix secret key (want name:base64 of 64 bytes, as made by nix-store --generate-binary-cache-key)")
	}
	return sk, nil
}

// publicKey is PubKey, or the public half of SecretKey.
func (o Options) publicKey() (signature.PublicKey, error) {
	if o.PubKey != "" {
		pk, err := signature.ParsePublicKey(strings.TrimSpace(o.PubKey))
		if err != nil {
			return pk, fmt.Errorf("NIX_CACHE_PUBKEY: %w", err)
		}
		return pk, nil
	}
	if o.SecretKey.IsSet() {
		sk, err := o.secretKey()
		if err != nil {
			return signature.PublicKey{}, err
		}
		return sk.ToPublicKey(), nil
	}
	return signature.PublicKey{}, &NotConfiguredError{Missing: []string{"NIX_CACHE_PUBKEY (or NIX_CACHE_SECRET_KEY)"}}
}
