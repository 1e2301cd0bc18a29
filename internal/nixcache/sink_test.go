package nixcache_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// gcsSink is the cheapest server the GCS client can upload to: it
// implements the JSON API's object upload (multipart and resumable), and
// answers every object look-up with 404. It reads and discards every
// byte, so a push to it costs the pusher and the HTTP transport, not an
// emulator storing the objects. Benchmarks use it to tell the pusher's
// cost from fake-gcs-server's. Its answer to an upload carries a fixed
// md5Hash (GCS gives the MD5 of what it stored; nothing here reads it
// back), so a push signs its proofs without asking for one.
type gcsSink struct {
	srv      *httptest.Server
	bytes    atomic.Int64
	mu       sync.Mutex
	sessions map[string]string // resumable upload id -> object name
	next     int
}

func startGCSSink(t testing.TB) *gcsSink {
	s := &gcsSink{sessions: map[string]string{}}
	s.srv = httptest.NewServer(s)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *gcsSink) Host() string { return strings.TrimPrefix(s.srv.URL, "http://") }

func (s *gcsSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch {
	case q.Get("upload_id") != "": // a chunk (the client POSTs or PUTs them)
		n, _ := io.Copy(io.Discard, r.Body)
		s.bytes.Add(n)
		// "bytes a-b/*" is an intermediate chunk; "bytes a-b/N" the last.
		if cr := r.Header.Get("Content-Range"); strings.HasSuffix(cr, "/*") {
			_, b, _ := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(cr, "bytes "), "/*"), "-")
			w.Header().Set("Range", "bytes=0-"+b)
			if r.Header.Get("X-GUploader-No-308") == "yes" { // the client's way round net/http
				w.Header().Set("X-Http-Status-Code-Override", "308")
				return
			}
			w.WriteHeader(308)
			return
		}
		s.mu.Lock()
		name := s.sessions[q.Get("upload_id")]
		s.mu.Unlock()
		s.object(w, name)
	case r.Method == http.MethodPost && q.Get("uploadType") == "resumable":
		s.mu.Lock()
		s.next++
		id := fmt.Sprint(s.next)
		s.sessions[id] = q.Get("name")
		s.mu.Unlock()
		w.Header().Set("Location", s.srv.URL+r.URL.Path+"?uploadType=resumable&upload_id="+id)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "{}")
	case r.Method == http.MethodPost:
		n, _ := io.Copy(io.Discard, r.Body) // multipart: metadata + media
		s.bytes.Add(n)
		s.object(w, q.Get("name"))
	default:
		io.Copy(io.Discard, r.Body)
		http.Error(w, `{"error":{"code":404,"message":"Not Found"}}`, http.StatusNotFound)
	}
}

func (s *gcsSink) object(w http.ResponseWriter, name string) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"bucket": "cache", "name": name, "generation": "1", "size": "0",
		"md5Hash": "1B2M2Y8AsgTpgAmY7PhCfg=="}) // MD5 of nothing
}
