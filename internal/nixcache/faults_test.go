package nixcache_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/nixcache"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// faultProxy sits between the GCS client and the emulator and breaks API
// requests in turn: 429 with Retry-After, 503, a reset connection, a slow
// body, a request that is applied and whose answer is then lost, and a
// clean pass.
type faultProxy struct {
	next   http.Handler
	n      atomic.Int64
	mu     sync.Mutex
	counts map[string]int
}

func startFaultProxy(t *testing.T, target string) *httptest.Server {
	u, err := url.Parse("http://" + target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	director := rp.Director
	rp.Director = func(r *http.Request) { director(r); r.Host = u.Host }
	fp := &faultProxy{next: rp, counts: map[string]int{}}
	srv := httptest.NewServer(fp)
	t.Cleanup(func() {
		srv.Close()
		t.Logf("faults injected: %v", fp.counts)
	})
	t.Cleanup(func() {
		for _, f := range []string{"429", "503", "reset", "slow", "lost-answer"} {
			if fp.counts[f] == 0 {
				t.Errorf("the proxy never injected %s", f)
			}
		}
	})
	return srv
}

func (f *faultProxy) count(kind string) {
	f.mu.Lock()
	f.counts[kind]++
	f.mu.Unlock()
}

func (f *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch f.n.Add(1) % 6 {
	case 0:
		f.count("429")
		w.Header().Set("Retry-After", "1")
		http.Error(w, `{"error":{"code":429,"message":"rate limited"}}`, http.StatusTooManyRequests)
	case 1:
		f.count("503")
		http.Error(w, `{"error":{"code":503,"message":"backend error"}}`, http.StatusServiceUnavailable)
	case 2:
		f.count("reset")
		hijackClose(w)
	case 3:
		f.count("slow")
		f.next.ServeHTTP(&slowWriter{ResponseWriter: w}, r)
	case 4:
		f.count("lost-answer")
		f.next.ServeHTTP(httptest.NewRecorder(), r) // applied upstream...
		hijackClose(w)                              // ...but the client never hears
	default:
		f.next.ServeHTTP(w, r)
	}
}

func hijackClose(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // RST, not FIN
			}
			c.Close()
		}
	}
}

// slowWriter dribbles the response body out.
type slowWriter struct{ http.ResponseWriter }

func (s *slowWriter) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		k := min(len(b), 512)
		m, err := s.ResponseWriter.Write(b[:k])
		n += m
		if err != nil {
			return n, err
		}
		if f, ok := s.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		time.Sleep(5 * time.Millisecond)
		b = b[k:]
	}
	return n, nil
}

func TestPushThroughFaultyNetwork(t *testing.T) {
	isolateNix(t)
	_, netboot := fixture(t)
	g := testrig.StartGCS(t, "cache")
	proxy := startFaultProxy(t, g.Host)
	t.Setenv("STORAGE_EMULATOR_HOST", strings.TrimPrefix(proxy.URL, "http://"))
	k := newKey(t, "faulty-1")
	o := gcsOptions(k)
	o.Retry = blob.Retry{Initial: 10 * time.Millisecond, Max: 200 * time.Millisecond, MaxRetryAfter: 2 * time.Second}
	var mu sync.Mutex
	var limits []int
	nixcache.ObserveLimits(t, func(n int) { mu.Lock(); limits = append(limits, n); mu.Unlock() })

	s, err := nixcache.Push(tctx(t), o, []string{netboot})
	if err != nil {
		t.Fatalf("push through faults: %v (%s)", err, s.JSON())
	}
	mu.Lock()
	t.Logf("concurrency limits under faults: %v (from %d)", limits, o.Jobs)
	if !droppedThenRose(limits, o.Jobs) {
		t.Errorf("the concurrency limit did not drop under throttling and rise again: %v (from %d)", limits, o.Jobs)
	}
	mu.Unlock()
	if s.Pushed+s.Present != len(testrig.Closure(t, netboot)) || s.Failed != 0 {
		t.Fatalf("summary %s", s.JSON())
	}
	mustVerify(t, o, true) // through the faulty proxy too
	if out, err := substitute(t, g.URL("cache", "nix-cache"), k.public, netboot); err != nil {
		t.Fatalf("nix could not substitute: %v\n%s", err, out)
	}
}

// droppedThenRose says whether limits (successive values, starting from
// start) went below start and later rose again.
func droppedThenRose(limits []int, start int) bool {
	low := start
	for _, n := range limits {
		if n > low && low < start {
			return true
		}
		low = min(low, n)
	}
	return false
}
