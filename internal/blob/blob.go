// Package blob is the object storage the pipeline writes to: the Nix binary
// cache and artifact uploads. One small interface with two implementations,
// a local directory and a Google Cloud Storage bucket, that pass the same
// contract tests. Writes become visible only when complete, and CreateOnly
// writes never overwrite (ErrExists instead), so concurrent writers of the
// same content-addressed key can race safely. IfGeneration writes replace
// an object only if it is still the version the writer inspected.
package blob

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"
)

var (
	// ErrNotFound is returned when a key does not exist.
	ErrNotFound = errors.New("blob: object not found")
	// ErrExists is returned by a CreateOnly Put when the key already exists.
	ErrExists = errors.New("blob: object already exists")
	// ErrChanged is returned by an IfGeneration Put when the object is no
	// longer the version named (replaced or deleted meanwhile).
	ErrChanged = errors.New("blob: object changed since it was inspected")
)

// Info describes a stored object.
type Info struct {
	Key     string
	Size    int64
	Updated time.Time
	// Generation names this version of the object: it changes whenever
	// the object is written again. Stat and List never give 0.
	Generation int64
	// MD5 is the MD5 of the content as the store computed it when the
	// object was written (never a value the writer supplied). Stat and
	// List fill it on stores whose Features have Checksums, except for
	// objects kept without one (GCS composite objects); Checksum fills it
	// on every store.
	MD5 []byte
	// Metadata is the object's custom metadata (PutOptions.Metadata), on
	// stores whose Features have Metadata; nil elsewhere.
	Metadata map[string]string
}

// Features says what a store keeps besides the bytes.
type Features struct {
	// Checksums: Stat and List give each object's MD5 (Info.MD5).
	Checksums bool
	// Metadata: Put stores PutOptions.Metadata; Stat and List return it.
	Metadata bool
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
	// IfGeneration, when non-zero, makes Put replace the object only if
	// its current generation is this one (Info.Generation); otherwise it
	// fails with ErrChanged and writes nothing. A missing object has no
	// generation: ErrChanged too. Not with CreateOnly.
	IfGeneration int64
	// Metadata is stored with the object on stores whose Features have
	// Metadata, and ignored by the others.
	Metadata map[string]string
	// Stored, when not nil, receives the stored object's Info after a
	// successful Put: from the store's answer to the write (GCS, whose
	// Info.MD5 is then the MD5 of the bytes it received), or from a Stat
	// right after it (a directory).
	Stored *Info
	// Unbuffered sends the object in a single request as it is read,
	// without an upload buffer, and without the store's own retries: for
	// small objects whose caller retries failed writes itself (a remote
	// store otherwise holds a buffer of at least 256 KiB per upload).
	Unbuffered bool
	// Deferred lets a store that makes each write durable on its own
	// (a directory: fsync of the file and of its directory) leave that to
	// a later Sync, which makes every deferred write durable at once. The
	// object is visible when Put returns either way. Stores whose writes
	// are durable when acknowledged (GCS) ignore it.
	Deferred bool
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
	// ListRange calls fn for every object whose key k has start <= k and,
	// unless end is "", k < end (byte order), in no particular order. A
	// caller lists a large namespace as several ranges at once.
	ListRange(ctx context.Context, start, end string, fn func(Info) error) error
	// Delete removes an object; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// DeleteIf removes the object only if it is still at generation gen
	// (Info.Generation): ErrChanged if it was rewritten meanwhile,
	// ErrNotFound if it is gone.
	DeleteIf(ctx context.Context, key string, gen int64) error
	// URL names an object: "gs://bucket/prefix/key" or "file:///dir/key".
	URL(key string) string
	// Features says what the store keeps besides the bytes.
	Features() Features
}

// Checksum describes key like Stat, with Info.MD5 filled in: from the
// store where it keeps one, otherwise computed by reading the object.
// Info.MD5 stays nil only for an object a checksumming store keeps without
// one (a GCS composite object).
func Checksum(ctx context.Context, s Store, key string) (Info, error) {
	if d, ok := s.(*Dir); ok {
		return d.checksum(ctx, key)
	}
	info, err := s.Stat(ctx, key)
	if err != nil || info.MD5 != nil || s.Features().Checksums {
		return info, err
	}
	rc, err := s.Open(ctx, key)
	if err != nil {
		return Info{}, err
	}
	defer rc.Close()
	h := md5.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return Info{}, fmt.Errorf("blob: read %s: %w", s.URL(key), err)
	}
	// What was read may be a newer version than the one Stat saw.
	info.Size, info.MD5, info.Generation = n, h.Sum(nil), 0
	return info, nil
}

// Syncer is a store whose Deferred writes are made durable in groups.
type Syncer interface {
	// Mark is a mark past every Deferred write that has returned.
	Mark() uint64
	// SyncTo makes every Deferred write before mark durable: at once if
	// a sync since covered it, else with the next sync (shared by every
	// caller that arrives while one runs).
	SyncTo(ctx context.Context, mark uint64) error
}

// Sync makes the Deferred writes to s that have returned durable; a
// no-op on stores whose writes are durable when acknowledged.
func Sync(ctx context.Context, s Store) error {
	if sy, ok := s.(Syncer); ok {
		return sy.SyncTo(ctx, sy.Mark())
	}
	return nil
}

// inRange says whether key lies in [start, end) ("" end: no bound).
func inRange(key, start, end string) bool {
	return key >= start && (end == "" || key < end)
}

func checkPut(key string, opt PutOptions) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if opt.CreateOnly && opt.IfGeneration != 0 {
		return fmt.Errorf("blob: put %s: CreateOnly and IfGeneration exclude each other", key)
	}
	return nil
}

type options struct {
	retry    Retry
	throttle Throttle
	clock    func() time.Time
}

// WithClock makes a directory store stamp every object it writes with
// now() as its modification time (Info.Updated), as a remote store stamps
// objects with its own clock: for tests of code that judges ages by the
// store's clock. Remote stores ignore it (the server's clock stamps).
func WithClock(now func() time.Time) Option { return func(o *options) { o.clock = now } }

// Option configures Open.
type Option func(*options)

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
		return openDir(u.Path, o)
	case location == "" || strings.Contains(location, "://"):
		return nil, fmt.Errorf("blob: unsupported location %q (want gs://bucket/prefix, file:///dir or a directory)", location)
	}
	return openDir(location, o)
}

func openDir(dir string, o options) (Store, error) {
	d, err := OpenDir(dir)
	if err != nil {
		return nil, err
	}
	d.clock = o.clock
	return d, nil
}

// checkKey rejects keys that could escape the store.
func checkKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") ||
		path.Clean(key) != key || key == ".." || strings.HasPrefix(key, "../") {
		return fmt.Errorf("blob: invalid key %q", key)
	}
	return nil
}

// ListRanges lists the objects whose keys fall in [bounds[0],
// bounds[len-1]) ("" as the last bound: no upper bound), calling fn for
// each from one goroutine at a time. On a remote store the ranges
// [bounds[i], bounds[i+1]) are listed at the same time (up to workers at
// once), so a namespace of n objects takes about n / (1000 × ranges)
// round trips instead of n / 1000; a directory is walked once.
func ListRanges(ctx context.Context, s Store, bounds []string, workers int, fn func(Info) error) error {
	if len(bounds) < 2 {
		return fmt.Errorf("blob: ListRanges needs at least two bounds")
	}
	first, last := bounds[0], bounds[len(bounds)-1]
	if _, ok := s.(*Dir); ok {
		return s.ListRange(ctx, first, last, fn)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var firstErr error
	call := func(i Info) error {
		mu.Lock()
		defer mu.Unlock()
		if firstErr != nil {
			return firstErr
		}
		if err := fn(i); err != nil {
			firstErr = err
			cancel()
			return err
		}
		return nil
	}
	sem := make(chan struct{}, max(1, workers))
	var wg sync.WaitGroup
	errs := make([]error, len(bounds)-1)
	for i := 0; i+1 < len(bounds); i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = s.ListRange(ctx, bounds[i], bounds[i+1], call)
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return errors.Join(errs...)
}
