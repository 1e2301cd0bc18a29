package blob

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/option"
	htransport "google.golang.org/api/transport/http"

	"github.com/socioprophet/sourceos/internal/config"
)

// GCS batch requests (https://cloud.google.com/storage/docs/batch): one
// multipart/mixed POST to /batch/storage/v1 carries up to MaxBatch JSON
// API calls, each an HTTP request of its own, and the answer carries their
// responses. The client library does not send them, so this does, with an
// HTTP client made the way the library makes its own: Google's storage API
// with Application Default Credentials, or the emulator
// STORAGE_EMULATOR_HOST names (as the library, which reads it too).

// gcsBatch is the client of a GCS store's batch requests, made on first
// use.
type gcsBatch struct {
	once sync.Once
	hc   *http.Client
	url  string
	err  error
	off  atomic.Bool // the server refused a batch: ErrNoBatch from then on
}

func (g *GCS) batchClient() (*http.Client, string, error) {
	b := &g.batch
	b.once.Do(func() {
		if host := config.GCSEmulatorHost(); host != "" {
			if !strings.Contains(host, "://") {
				host = "http://" + host
			}
			b.hc, b.url = &http.Client{}, strings.TrimSuffix(host, "/")+"/batch/storage/v1"
			return
		}
		hc, _, err := htransport.NewClient(context.Background(), option.WithScopes(storage.ScopeFullControl))
		if err != nil {
			b.err = fmt.Errorf("%w: %v", ErrNoBatch, err)
			return
		}
		b.hc, b.url = hc, "https://storage.googleapis.com/batch/storage/v1"
	})
	if b.off.Load() {
		return nil, "", ErrNoBatch
	}
	return b.hc, b.url, b.err
}

// batchFields are the object fields a batched look-up asks for: what
// Info holds.
const batchFields = "name,size,updated,generation,md5Hash,metadata"

// StatBatch implements Batcher.
func (g *GCS) StatBatch(ctx context.Context, keys []string) ([]Info, []error, error) {
	if len(keys) > MaxBatch {
		return nil, nil, fmt.Errorf("blob: a batch of %d look-ups (at most %d)", len(keys), MaxBatch)
	}
	for _, k := range keys {
		if err := checkKey(k); err != nil {
			return nil, nil, err
		}
	}
	infos, errs := make([]Info, len(keys)), make([]error, len(keys))
	calls := make([]string, len(keys))
	for i, k := range keys {
		calls[i] = "GET " + g.objectPath(k) + "?fields=" + url.QueryEscape(batchFields) + " HTTP/1.1\r\n\r\n"
	}
	err := g.runBatch(ctx, calls, func(i int, code int, body []byte) error {
		switch code {
		case http.StatusOK:
			info, err := decodeObject(keys[i], body)
			infos[i], errs[i] = info, err
		case http.StatusNotFound:
			errs[i] = fmt.Errorf("%s: %w", g.URL(keys[i]), ErrNotFound)
		default:
			errs[i] = fmt.Errorf("blob: stat %s: HTTP %d", g.URL(keys[i]), code)
		}
		return nil
	})
	return infos, errs, err
}

// DeleteIfBatch implements Batcher: each call names the generation and
// makes it a precondition, as DeleteIf does; a 404 (the generation is not
// the live one, or the object is gone) is told apart by a look-up.
func (g *GCS) DeleteIfBatch(ctx context.Context, objs []Cond) ([]error, error) {
	if len(objs) > MaxBatch {
		return nil, fmt.Errorf("blob: a batch of %d deletes (at most %d)", len(objs), MaxBatch)
	}
	for _, o := range objs {
		if err := checkKey(o.Key); err != nil {
			return nil, err
		}
		if o.Gen == 0 {
			return nil, fmt.Errorf("blob: delete %s: no generation given", g.URL(o.Key))
		}
	}
	errs := make([]error, len(objs))
	calls := make([]string, len(objs))
	for i, o := range objs {
		gen := strconv.FormatInt(o.Gen, 10)
		calls[i] = "DELETE " + g.objectPath(o.Key) + "?generation=" + gen + "&ifGenerationMatch=" + gen + " HTTP/1.1\r\n\r\n"
	}
	var gone []int
	err := g.runBatch(ctx, calls, func(i int, code int, _ []byte) error {
		switch code {
		case http.StatusOK, http.StatusNoContent:
			errs[i] = nil
		case http.StatusPreconditionFailed:
			errs[i] = fmt.Errorf("%s: %w", g.URL(objs[i].Key), ErrChanged)
		case http.StatusNotFound:
			gone = append(gone, i)
		default:
			errs[i] = fmt.Errorf("blob: delete %s: HTTP %d", g.URL(objs[i].Key), code)
		}
		return nil
	})
	if err != nil || len(gone) == 0 {
		return errs, err
	}
	keys := make([]string, len(gone))
	for j, i := range gone {
		keys[j] = objs[i].Key
	}
	_, serrs, err := g.StatBatch(ctx, keys)
	for j, i := range gone {
		switch {
		case err != nil:
			errs[i] = err
		case serrs[j] == nil:
			errs[i] = fmt.Errorf("%s: %w", g.URL(objs[i].Key), ErrChanged)
		case errors.Is(serrs[j], ErrNotFound):
			errs[i] = fmt.Errorf("%s: %w", g.URL(objs[i].Key), ErrNotFound)
		default:
			// Unknown: neither gone nor changed (a caller would act on either).
			errs[i] = fmt.Errorf("blob: delete %s: look-up after a 404: %w", g.URL(objs[i].Key), serrs[j])
		}
	}
	return errs, nil
}

// objectPath is the JSON API path of key's object.
func (g *GCS) objectPath(key string) string {
	return "/storage/v1/b/" + url.PathEscape(g.name) + "/o/" + url.PathEscape(g.object(key))
}

// runBatch sends calls (HTTP requests, one per string) as one batch and
// hands each answer to done, retrying the whole batch while it fails
// transiently and then the calls whose answers were transient failures,
// as the retry policy allows.
func (g *GCS) runBatch(ctx context.Context, calls []string, done func(i, code int, body []byte) error) error {
	hc, u, err := g.batchClient()
	if err != nil {
		return err
	}
	todo := make([]int, len(calls))
	for i := range todo {
		todo[i] = i
	}
	r := g.opt.retry
	var last error
	for attempt := 0; len(todo) > 0; attempt++ {
		if attempt > 0 {
			if attempt >= r.MaxAttempts {
				return fmt.Errorf("blob: batch request: %w", last)
			}
			if g.opt.throttle != nil {
				g.opt.throttle.Throttled()
			}
			if err := sleepCtx(ctx, r.Backoff(attempt, last)); err != nil {
				return err
			}
		}
		answers, err := g.sendBatch(ctx, hc, u, calls, todo)
		if err != nil {
			if errors.Is(err, ErrNoBatch) || !Transient(err) {
				return err
			}
			last = err
			continue
		}
		var again []int
		for j, i := range todo {
			a := answers[j]
			if transientCode(a.code) {
				again = append(again, i)
				last = fmt.Errorf("batched call answered HTTP %d", a.code)
				continue
			}
			if err := done(i, a.code, a.body); err != nil {
				return err
			}
		}
		todo = again
	}
	return nil
}

func transientCode(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500
}

// answer is one call's response in a batch.
type answer struct {
	code int
	body []byte
}

// batchStatus is an HTTP error of a whole batch request.
type batchStatus struct {
	code   int
	header http.Header
}

func (e *batchStatus) Error() string { return fmt.Sprintf("batch request: HTTP %d", e.code) }

// sendBatch posts the calls of todo and returns their answers in order.
func (g *GCS) sendBatch(ctx context.Context, hc *http.Client, u string, calls []string, todo []int) ([]answer, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, i := range todo {
		h := textproto.MIMEHeader{}
		h.Set("Content-Type", "application/http")
		h.Set("Content-Transfer-Encoding", "binary")
		h.Set("Content-ID", "<call+"+strconv.Itoa(i)+">")
		pw, err := mw.CreatePart(h)
		if err != nil {
			return nil, err
		}
		io.WriteString(pw, calls[i])
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, &body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "multipart/mixed; boundary="+mw.Boundary())
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch {
	case transientCode(resp.StatusCode):
		_, _ = io.Copy(io.Discard, resp.Body)
		if d := retryAfter(resp.Header, time.Now()); d > 0 {
			sleep(ctx, min(d, g.opt.retry.MaxRetryAfter))
		}
		return nil, &transientError{&batchStatus{resp.StatusCode, resp.Header}}
	case resp.StatusCode == http.StatusNotFound, resp.StatusCode == http.StatusBadRequest,
		resp.StatusCode == http.StatusNotImplemented, resp.StatusCode == http.StatusMethodNotAllowed:
		g.batch.off.Store(true)
		return nil, fmt.Errorf("%w: the server answered HTTP %d", ErrNoBatch, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("blob: batch request: HTTP %d", resp.StatusCode)
	}
	return readBatch(resp, todo)
}

// transientError marks an error worth retrying.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// maxPartBody bounds one answer of a batch response: an object resource
// with the most metadata GCS keeps (8 KiB) is far smaller.
const maxPartBody = 1 << 20

// readBatch reads the answers of a batch response, matching them to the
// calls of todo by Content-ID.
func readBatch(resp *http.Response, todo []int) ([]answer, error) {
	_, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil {
		return nil, fmt.Errorf("blob: batch response: %w", err)
	}
	pos := make(map[int]int, len(todo))
	for j, i := range todo {
		pos[i] = j
	}
	answers := make([]answer, len(todo))
	filled := make([]bool, len(todo))
	seen := 0
	mr := multipart.NewReader(resp.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, &transientError{fmt.Errorf("blob: batch response: %w", err)}
		}
		id := strings.Trim(p.Header.Get("Content-ID"), "<>")
		n, err := strconv.Atoi(id[strings.LastIndex(id, "+")+1:])
		j, ok := pos[n]
		if err != nil || !ok {
			return nil, fmt.Errorf("blob: batch response: unknown Content-ID %q", id)
		}
		if filled[j] {
			return nil, fmt.Errorf("blob: batch response: Content-ID %q answered twice", id)
		}
		filled[j] = true
		r, err := http.ReadResponse(bufio.NewReader(p), nil)
		if err != nil {
			return nil, &transientError{fmt.Errorf("blob: batch response part: %w", err)}
		}
		b, err := io.ReadAll(io.LimitReader(r.Body, maxPartBody+1))
		r.Body.Close()
		if err == nil && len(b) > maxPartBody {
			return nil, fmt.Errorf("blob: batch response part over %d bytes", maxPartBody)
		}
		if err != nil {
			return nil, &transientError{fmt.Errorf("blob: batch response part: %w", err)}
		}
		answers[j] = answer{code: r.StatusCode, body: b}
		seen++
	}
	if seen != len(todo) {
		return nil, &transientError{fmt.Errorf("blob: batch response holds %d answers for %d calls", seen, len(todo))}
	}
	return answers, nil
}

// objectJSON is the JSON API's object resource, the fields batchFields
// selects.
type objectJSON struct {
	Size       string            `json:"size"`
	Updated    time.Time         `json:"updated"`
	Generation string            `json:"generation"`
	MD5Hash    string            `json:"md5Hash"`
	Metadata   map[string]string `json:"metadata"`
}

func decodeObject(key string, b []byte) (Info, error) {
	var o objectJSON
	if err := json.Unmarshal(b, &o); err != nil {
		return Info{}, fmt.Errorf("blob: stat %s: %w", key, err)
	}
	size, err1 := strconv.ParseInt(o.Size, 10, 64)
	gen, err2 := strconv.ParseInt(o.Generation, 10, 64)
	if err1 != nil || err2 != nil || gen == 0 {
		return Info{}, fmt.Errorf("blob: stat %s: size %q, generation %q", key, o.Size, o.Generation)
	}
	info := Info{Key: key, Size: size, Updated: o.Updated, Generation: gen, Metadata: o.Metadata}
	if sum, err := base64.StdEncoding.DecodeString(o.MD5Hash); err == nil && len(sum) == 16 {
		info.MD5 = sum
	}
	return info, nil
}
