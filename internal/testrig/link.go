package testrig

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/storage"
)

// LinkOptions shape a simulated network link to a GCS stand-in.
type LinkOptions struct {
	// Latency is added to every request before the server sees it: one
	// round trip of a remote store.
	Latency time.Duration
	// Bandwidth caps each direction of the link, in bytes per second,
	// shared by every connection (0: no cap).
	Bandwidth int64
	// Backend is host:port of a GCS emulator (fake-gcs-server) to put
	// behind the link; empty: a MemGCS holding Buckets, in process.
	Backend string
	// Buckets are created in the MemGCS.
	Buckets []string
}

// Link is a GCS stand-in behind a simulated link: every request waits
// Latency and every byte each way is paced to Bandwidth. The GCS client
// (through STORAGE_EMULATOR_HOST) and Nix (through URL) both go through
// it, so a benchmark on it sees the costs a real remote store has: round
// trips and bandwidth, not an emulator's CPU.
type Link struct {
	// Host is host:port of the link.
	Host string
	// GCS is the in-process stand-in (nil with LinkOptions.Backend).
	GCS *MemGCS

	latency   atomic.Int64
	up, down  *pacer
	backend   string
	transport *http.Transport
	handler   http.Handler

	requests, sentBytes, receivedBytes atomic.Int64
	kinds                              [numKinds]atomic.Int64
}

// LinkStats counts what crossed the link.
type LinkStats struct {
	Requests int64
	// Up is request body bytes (client to store), Down response body
	// bytes.
	Up, Down int64
	// Kinds counts the requests by kind: "list" (a listing page), "stat"
	// (an object's metadata), "read" (an object's bytes), "upload" (an
	// upload or a chunk of one), "delete", "batch" (a batch request) and
	// "other".
	Kinds map[string]int64
}

// Sub is what crossed the link between before and s.
func (s LinkStats) Sub(before LinkStats) LinkStats {
	out := LinkStats{Requests: s.Requests - before.Requests, Up: s.Up - before.Up, Down: s.Down - before.Down,
		Kinds: map[string]int64{}}
	for k, v := range s.Kinds {
		if d := v - before.Kinds[k]; d != 0 {
			out.Kinds[k] = d
		}
	}
	return out
}

var kindNames = [...]string{"list", "stat", "read", "upload", "delete", "batch", "other"}

const numKinds = len(kindNames)

// requestKind classifies a request to a GCS stand-in.
func requestKind(r *http.Request) int {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/batch/"):
		return 5
	case strings.HasPrefix(p, "/upload/"):
		return 3
	case r.Method == http.MethodDelete:
		return 4
	case strings.HasPrefix(p, "/storage/v1/b/") && strings.HasSuffix(p, "/o"):
		return 0
	case strings.HasPrefix(p, "/storage/v1/b/") && r.URL.Query().Get("alt") != "media":
		return 1
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		return 2
	}
	return 6
}

// StartLink starts the link (and a MemGCS behind it unless o.Backend),
// points STORAGE_EMULATOR_HOST at it for the rest of the test, and stops
// it at the end of the test.
func StartLink(t testing.TB, o LinkOptions) *Link {
	t.Helper()
	l := &Link{up: newPacer(o.Bandwidth), down: newPacer(o.Bandwidth), backend: o.Backend}
	l.latency.Store(int64(o.Latency))
	if o.Backend == "" {
		l.GCS = NewMemGCS(o.Buckets...)
		l.handler = l.GCS
	} else {
		l.transport = &http.Transport{MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute}
		l.handler = http.HandlerFunc(l.forward)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("link: %v", err)
	}
	l.Host = ln.Addr().String()
	srv := &http.Server{Handler: l, ReadHeaderTimeout: time.Minute}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if l.transport != nil {
			l.transport.CloseIdleConnections()
		}
	})
	t.Setenv("STORAGE_EMULATOR_HOST", l.Host)
	return l
}

// URL is the public HTTP URL of object in bucket, through the link.
func (l *Link) URL(bucket, object string) string {
	return fmt.Sprintf("http://%s/%s/%s", l.Host, bucket, object)
}

// SetLatency changes the latency of the requests that start from now on.
func (l *Link) SetLatency(d time.Duration) { l.latency.Store(int64(d)) }

// SetBandwidth changes the cap of both directions (0: none).
func (l *Link) SetBandwidth(bytesPerSecond int64) {
	l.up.setRate(bytesPerSecond)
	l.down.setRate(bytesPerSecond)
}

// Stats returns what crossed the link so far.
func (l *Link) Stats() LinkStats {
	s := LinkStats{Requests: l.requests.Load(), Up: l.sentBytes.Load(), Down: l.receivedBytes.Load(), Kinds: map[string]int64{}}
	for i, name := range kindNames {
		if n := l.kinds[i].Load(); n > 0 {
			s.Kinds[name] = n
		}
	}
	return s
}

// ServeHTTP implements http.Handler: latency, then the request with both
// bodies paced.
func (l *Link) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.requests.Add(1)
	l.kinds[requestKind(r)].Add(1)
	if d := time.Duration(l.latency.Load()); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-r.Context().Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	r.Body = &pacedReader{ctx: r.Context(), r: r.Body, p: l.up, n: &l.sentBytes}
	l.handler.ServeHTTP(&pacedWriter{ResponseWriter: w, ctx: r.Context(), p: l.down, n: &l.receivedBytes}, r)
}

// forward sends the request on to the backend emulator and rewrites the
// backend's address in a Location answer (the URL of a resumable upload)
// to the link's.
func (l *Link) forward(w http.ResponseWriter, r *http.Request) {
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.URL.Scheme, out.URL.Host, out.Host = "http", l.backend, l.backend
	resp, err := l.transport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		for _, v := range vs {
			if k == "Location" {
				v = strings.Replace(v, l.backend, l.Host, 1)
			}
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// pacer spreads the bytes of every stream of one direction over time at
// a shared rate: each piece is scheduled after those already scheduled,
// with up to pacerBurst of unused time carried over.
type pacer struct {
	mu   sync.Mutex
	rate float64 // bytes per second; 0: unpaced
	next time.Time
}

const (
	pacerChunk = 64 << 10
	pacerBurst = 5 * time.Millisecond
)

func newPacer(rate int64) *pacer { return &pacer{rate: float64(rate)} }

func (p *pacer) setRate(rate int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rate = float64(rate)
}

// wait returns when n more bytes may have crossed.
func (p *pacer) wait(ctx context.Context, n int) error {
	p.mu.Lock()
	if p.rate <= 0 {
		p.mu.Unlock()
		return nil
	}
	now := time.Now()
	if earliest := now.Add(-pacerBurst); p.next.Before(earliest) {
		p.next = earliest
	}
	p.next = p.next.Add(time.Duration(float64(n) / p.rate * float64(time.Second)))
	d := p.next.Sub(now)
	p.mu.Unlock()
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// pacedReader is a request body read at the link's pace.
type pacedReader struct {
	ctx context.Context
	r   io.ReadCloser
	p   *pacer
	n   *atomic.Int64
}

func (r *pacedReader) Read(b []byte) (int, error) {
	if len(b) > pacerChunk {
		b = b[:pacerChunk]
	}
	n, err := r.r.Read(b)
	if n > 0 {
		r.n.Add(int64(n))
		if werr := r.p.wait(r.ctx, n); werr != nil {
			return n, werr
		}
	}
	return n, err
}

func (r *pacedReader) Close() error { return r.r.Close() }

// pacedWriter is a response written at the link's pace.
type pacedWriter struct {
	http.ResponseWriter
	ctx context.Context
	p   *pacer
	n   *atomic.Int64
}

func (w *pacedWriter) Write(b []byte) (int, error) {
	done := 0
	for done < len(b) {
		piece := b[done:min(len(b), done+pacerChunk)]
		if err := w.p.wait(w.ctx, len(piece)); err != nil {
			return done, err
		}
		w.n.Add(int64(len(piece))) // before the client can have read it
		n, err := w.ResponseWriter.Write(piece)
		done += n
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// StartLinkClient returns a GCS client that talks through the link that
// STORAGE_EMULATOR_HOST points at.
func StartLinkClient(t testing.TB) *storage.Client {
	t.Helper()
	c, err := storage.NewClient(context.Background())
	if err != nil {
		t.Fatalf("GCS client: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
