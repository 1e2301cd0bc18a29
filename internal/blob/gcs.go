package blob

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"cloud.google.com/go/storage"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
)

// GCS is a Store in a Google Cloud Storage bucket, below an optional
// prefix. The client honours STORAGE_EMULATOR_HOST by itself.
type GCS struct {
	client *storage.Client
	bucket *storage.BucketHandle
	name   string
	prefix string // "" or "a/b" (no trailing slash)
	opt    options
	batch  gcsBatch
}

func openGCS(ctx context.Context, bucket, prefix string, o options) (*GCS, error) {
	c, err := storage.NewClient(ctx)
	if err != nil {
		return nil, fmt.Errorf("blob: GCS client: %w", err)
	}
	return &GCS{client: c, bucket: c.Bucket(bucket), name: bucket, prefix: prefix, opt: o}, nil
}

// Close releases the client.
func (g *GCS) Close() error { return g.client.Close() }

func (g *GCS) object(key string) string {
	if g.prefix == "" {
		return key
	}
	return g.prefix + "/" + key
}

// handle returns an object handle whose retries follow g's policy, honour
// Retry-After (sleeping within ctx) and report throttling.
func (g *GCS) handle(ctx context.Context, key string) *storage.ObjectHandle {
	r := g.opt.retry
	return g.bucket.Object(g.object(key)).Retryer(
		storage.WithPolicy(storage.RetryAlways),
		storage.WithMaxAttempts(r.MaxAttempts),
		storage.WithBackoff(gax.Backoff{Initial: r.Initial, Max: r.Max, Multiplier: 2}),
		storage.WithErrorFunc(func(err error) bool { return g.shouldRetry(ctx, err) }),
	)
}

// Features implements Store: GCS computes every object's MD5 as it is
// written (composite objects excepted) and keeps custom metadata.
func (g *GCS) Features() Features { return Features{Checksums: true, Metadata: true} }

// Put streams r to the object. The upload is committed only when r reaches
// EOF; any error cancels it, so nothing is stored. CreateOnly uses the
// precondition DoesNotExist, a 412 becoming ErrExists; IfGeneration the
// precondition GenerationMatch, a 412 becoming ErrChanged.
func (g *GCS) Put(ctx context.Context, key string, r io.Reader, opt PutOptions) error {
	if err := checkPut(key, opt); err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	h := g.handle(wctx, key)
	failed := ErrExists
	switch {
	case opt.CreateOnly:
		h = h.If(storage.Conditions{DoesNotExist: true})
	case opt.IfGeneration != 0:
		h = h.If(storage.Conditions{GenerationMatch: opt.IfGeneration})
		failed = ErrChanged
	}
	w := h.NewWriter(wctx)
	w.ContentType = opt.ContentType
	w.CacheControl = opt.CacheControl
	w.Metadata = opt.Metadata
	hint := opt.SizeHint
	if l, ok := r.(interface{ Len() int }); ok && hint <= 0 {
		hint = int64(l.Len()) // strings.Reader, bytes.Reader, bytes.Buffer
	}
	w.ChunkSize = chunkSize(hint)
	if opt.Unbuffered {
		w.ChunkSize = 0 // one request, streamed; retries are the caller's
	}
	if _, err := io.Copy(w, r); err != nil {
		cancel() // abandons the upload
		_ = w.Close()
		if isPrecondition(err) { // a multi-chunk upload learns of the 412 while writing
			return fmt.Errorf("%s: %w", g.URL(key), failed)
		}
		return fmt.Errorf("blob: upload %s: %w", g.URL(key), err)
	}
	if err := w.Close(); err != nil {
		if isPrecondition(err) {
			return fmt.Errorf("%s: %w", g.URL(key), failed)
		}
		return fmt.Errorf("blob: upload %s: %w", g.URL(key), err)
	}
	if opt.Stored != nil {
		*opt.Stored = attrsInfo(key, w.Attrs())
	}
	return nil
}

// chunkSize is the upload buffer: 8 MiB, or less for an object known to be
// smaller (a multiple of 256 KiB, as GCS requires). Objects that fit in one
// chunk go up in a single request that the client can retry from memory.
func chunkSize(hint int64) int {
	const max, unit = 8 << 20, 256 << 10
	if hint <= 0 || hint >= max {
		return max
	}
	return int((hint/unit + 1) * unit)
}

func isPrecondition(err error) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == http.StatusPreconditionFailed
}

// Open implements Store.
func (g *GCS) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	r, err := g.handle(ctx, key).NewReader(ctx)
	if errors.Is(err, storage.ErrObjectNotExist) {
		return nil, fmt.Errorf("%s: %w", g.URL(key), ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("blob: read %s: %w", g.URL(key), err)
	}
	return r, nil
}

// Stat implements Store.
func (g *GCS) Stat(ctx context.Context, key string) (Info, error) {
	if err := checkKey(key); err != nil {
		return Info{}, err
	}
	a, err := g.handle(ctx, key).Attrs(ctx)
	if errors.Is(err, storage.ErrObjectNotExist) {
		return Info{}, fmt.Errorf("%s: %w", g.URL(key), ErrNotFound)
	}
	if err != nil {
		return Info{}, fmt.Errorf("blob: stat %s: %w", g.URL(key), err)
	}
	return attrsInfo(key, a), nil
}

// listAttrs are the object attributes a listing asks for: what Info holds.
var listAttrs = []string{"Name", "Size", "Updated", "Generation", "MD5", "Metadata"}

func attrsInfo(key string, a *storage.ObjectAttrs) Info {
	i := Info{Key: key, Size: a.Size, Updated: a.Updated, Generation: a.Generation, Metadata: a.Metadata}
	if len(a.MD5) == md5.Size { // the client decodes a missing md5Hash as empty
		i.MD5 = a.MD5
	}
	return i
}

// List implements Store.
func (g *GCS) List(ctx context.Context, prefix string, fn func(Info) error) error {
	full := g.object(prefix)
	if prefix == "" && g.prefix != "" {
		full = g.prefix + "/"
	}
	return g.list(ctx, &storage.Query{Prefix: full}, prefix, fn)
}

// ListRange implements Store with the listing's startOffset and endOffset.
func (g *GCS) ListRange(ctx context.Context, start, end string, fn func(Info) error) error {
	q := &storage.Query{}
	if g.prefix != "" {
		q.Prefix = g.prefix + "/"
	}
	if start != "" {
		q.StartOffset = g.object(start)
	}
	if end != "" {
		q.EndOffset = g.object(end)
	}
	return g.list(ctx, q, start, fn)
}

func (g *GCS) list(ctx context.Context, q *storage.Query, what string, fn func(Info) error) error {
	if err := q.SetAttrSelection(listAttrs); err != nil {
		return fmt.Errorf("blob: %w", err)
	}
	it := g.bucket.Retryer(storage.WithPolicy(storage.RetryAlways),
		storage.WithMaxAttempts(g.opt.retry.MaxAttempts),
		storage.WithErrorFunc(func(err error) bool { return g.shouldRetry(ctx, err) }),
	).Objects(ctx, q)
	for {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("blob: list %s: %w", g.URL(what), err)
		}
		key := strings.TrimPrefix(a.Name, g.prefix+"/")
		if g.prefix == "" {
			key = a.Name
		}
		if err := fn(attrsInfo(key, a)); err != nil {
			return err
		}
	}
}

// Delete implements Store.
func (g *GCS) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	err := g.handle(ctx, key).Delete(ctx)
	if err != nil && !errors.Is(err, storage.ErrObjectNotExist) {
		return fmt.Errorf("blob: delete %s: %w", g.URL(key), err)
	}
	return nil
}

// DeleteIf implements Store: the request names the generation and makes
// it a precondition too (GenerationMatch), so a bucket keeping old
// versions does not purge an old one instead. A 404 then means the
// generation is not the live one: ErrChanged if the object exists.
func (g *GCS) DeleteIf(ctx context.Context, key string, gen int64) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if gen == 0 {
		return fmt.Errorf("blob: delete %s: no generation given", g.URL(key))
	}
	err := g.handle(ctx, key).Generation(gen).If(storage.Conditions{GenerationMatch: gen}).Delete(ctx)
	switch {
	case err == nil:
		return nil
	case isPrecondition(err):
		return fmt.Errorf("%s: %w", g.URL(key), ErrChanged)
	case errors.Is(err, storage.ErrObjectNotExist):
		switch _, serr := g.Stat(ctx, key); {
		case serr == nil:
			return fmt.Errorf("%s: %w", g.URL(key), ErrChanged)
		case !errors.Is(serr, ErrNotFound):
			return fmt.Errorf("blob: delete %s: look-up after a 404: %w", g.URL(key), serr)
		}
		return fmt.Errorf("%s: %w", g.URL(key), ErrNotFound)
	}
	return fmt.Errorf("blob: delete %s: %w", g.URL(key), err)
}

// URL implements Store.
func (g *GCS) URL(key string) string {
	o := g.object(key)
	if key == "" {
		o = g.prefix
	}
	return strings.TrimSuffix("gs://"+g.name+"/"+o, "/")
}
