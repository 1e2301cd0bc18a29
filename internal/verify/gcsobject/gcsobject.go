// Package gcsobject reads GCS objects for `mage verify gs://…`, with the
// GCS client: the caller's credentials when there are some (they go to
// Google's storage API only, or to the emulator STORAGE_EMULATOR_HOST
// names), anonymous otherwise, so a public bucket needs none. It lives
// apart from internal/verify so that verifying a local file does not link
// (or start) the GCS client.
package gcsobject

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"

	"cloud.google.com/go/storage"
	"google.golang.org/api/option"
)

// Reader opens objects; its client is made on the first Open.
type Reader struct {
	mu     sync.Mutex
	client *storage.Client
}

// New returns a Reader; call Close when done.
func New() *Reader { return &Reader{} }

func (r *Reader) clientFor(ctx context.Context) (*storage.Client, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.client != nil {
		return r.client, nil
	}
	c, err := storage.NewClient(ctx)
	if err != nil {
		if c, err = storage.NewClient(ctx, option.WithoutAuthentication()); err != nil {
			return nil, fmt.Errorf("GCS client: %w", err)
		}
	}
	r.client = c
	return c, nil
}

// Open returns the object and its size; an error wrapping fs.ErrNotExist
// when there is no such object.
func (r *Reader) Open(ctx context.Context, bucket, object string) (io.ReadCloser, int64, error) {
	c, err := r.clientFor(ctx)
	if err != nil {
		return nil, 0, err
	}
	rd, err := c.Bucket(bucket).Object(object).NewReader(ctx)
	if errors.Is(err, storage.ErrObjectNotExist) {
		return nil, 0, fmt.Errorf("gs://%s/%s: %w", bucket, object, fs.ErrNotExist)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("fetch gs://%s/%s: %w", bucket, object, err)
	}
	return rd, rd.Attrs.Size, nil
}

// Close releases the client, if one was made.
func (r *Reader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.client == nil {
		return nil
	}
	err := r.client.Close()
	r.client = nil
	return err
}
