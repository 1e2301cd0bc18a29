// Package blob is the object storage the pipeline writes to: the Nix binary
// cache and artifact uploads. One small interface with two implementations,
// a local directory and a Google Cloud Storage bucket, that pass the same
// contract tests. Writes become visible only when complete, and CreateOnly
// writes never overwrite (ErrExists instead), so concurrent writers of the
// same content-addressed key can race safely.
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"strings"
	"time"
)

var (
	// ErrNotFound is returned when a key does not exist.
	ErrNotFound = errors.New("blob: object not found")
	// ErrExists is returned by a CreateOnly Put when the key already exists.
	ErrExists = errors.New("blob: object already exists")
)

// Info describes a stored object.
type Info struct {
	Key     string
	Size    int64
	Updated time.Time
}

// PutOptions tunes one Put.
type PutOptions struct {
	ContentType string
	// CreateOnly makes Put fail with ErrExists, writing nothing, when the
	// key already exists.
	CreateOnly   bool
	CacheControl string
	// SizeHint, when > 0, is the expected size of the object; a remote
	// store uses it to size its upload buffer (memory stays proportional
	// to small objects).
	SizeHint int64
}

// Store is a flat namespace of objects addressed by slash-separated keys,
// relative to the store's location.
type Store interface {
	// Put stores r's content under key. The object becomes visible only
	// once r reached EOF and the data is durable; if r fails, nothing is
	// stored.
	Put(ctx context.Context, key string, r io.Reader, opt PutOptions) error
	// Open reads an object; ErrNotFound when missing.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	// Stat describes an object; ErrNotFound when missing.
	Stat(ctx context.Context, key string) (Info, error)
	// List calls fn for every object whose key starts with prefix, in no
	// particular order. An error from fn stops the listing and is returned.
	List(ctx context.Context, prefix string, fn func(Info) error) error
	// Delete removes an object; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// URL names an object: "gs://bucket/prefix/key" or "file:///dir/key".
	URL(key string) string
}

// Retry tunes how transient failures (HTTP 408, 429 and 5xx, dropped
// connections) are retried. Zero fields take defaults.
type Retry struct {
	// MaxAttempts per request (default 12).
	MaxAttempts int
	// Initial and Max bound the jittered exponential backoff (default
	// 100ms and 15s).
	Initial, Max time.Duration
	// MaxRetryAfter caps how long a server's Retry-After is honoured
	// (default 60s).
	MaxRetryAfter time.Duration
}

func (r Retry) withDefaults() Retry {
	if r.MaxAttempts <= 0 {
		r.MaxAttempts = 12
	}
	if r.Initial <= 0 {
		r.Initial = 100 * time.Millisecond
	}
	if r.Max <= 0 {
		r.Max = 15 * time.Second
	}
	if r.MaxRetryAfter <= 0 {
		r.MaxRetryAfter = 60 * time.Second
	}
	return r
}

// Throttle is told about every response that asks the client to slow down
// (408, 429, 503) and every retried failure, so callers can lower their
// concurrency.
type Throttle interface{ Throttled() }

type options struct {
	retry    Retry
	throttle Throttle
}

// Option configures Open.
type Option func(*options)

// WithRetry sets the retry policy of remote stores.
func WithRetry(r Retry) Option { return func(o *options) { o.retry = r } }

// WithThrottle registers t to be told when the remote store throttles.
func WithThrottle(t Throttle) Option { return func(o *options) { o.throttle = t } }

// Open opens the store at location: "gs://bucket[/prefix]", "file:///dir"
// or an absolute or relative directory path.
func Open(ctx context.Context, location string, opts ...Option) (Store, error) {
	o := options{}
	for _, fn := range opts {
		fn(&o)
	}
	o.retry = o.retry.withDefaults()
	switch {
	case strings.HasPrefix(location, "gs://"):
		bucket, prefix, _ := strings.Cut(strings.TrimPrefix(location, "gs://"), "/")
		if bucket == "" {
			return nil, fmt.Errorf("blob: %q names no bucket", location)
		}
		return openGCS(ctx, bucket, strings.Trim(prefix, "/"), o)
	case strings.HasPrefix(location, "file://"):
		u, err := url.Parse(location)
		if err != nil {
			return nil, fmt.Errorf("blob: %w", err)
		}
		return OpenDir(u.Path)
	case location == "" || strings.Contains(location, "://"):
		return nil, fmt.Errorf("blob: unsupported location %q (want gs://bucket/prefix, file:///dir or a directory)", location)
	}
	return OpenDir(location)
}

// checkKey rejects keys that could escape the store.
func checkKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") ||
		path.Clean(key) != key || key == ".." || strings.HasPrefix(key, "../") {
		return fmt.Errorf("blob: invalid key %q", key)
	}
	return nil
}
