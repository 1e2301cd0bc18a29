package nixcache_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/socioprophet/sourceos/internal/nixcache"
	"github.com/socioprophet/sourceos/internal/nixstore"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// Paths an upstream serves are not pushed; an unreachable upstream costs
// one log line and no stall.
func TestPushSkipsUpstreamPaths(t *testing.T) {
	testrig.Nix(t)
	system, _ := fixture(t)
	closure := testrig.Closure(t, system)
	served := nixstore.HashPart(closure[0]) + ".narinfo"
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch strings.TrimPrefix(r.URL.Path, "/") {
		case "nix-cache-info", served:
			w.WriteHeader(http.StatusOK)
		default:
			http.NotFound(w, r)
		}
	}))
	defer up.Close()

	o := dirOptions(t.TempDir(), newKey(t, "up-1"))
	o.Upstreams = []string{up.URL}
	s, err := nixcache.Push(tctx(t), o, []string{system})
	if err != nil {
		t.Fatal(err)
	}
	if s.Upstream != 1 || s.Pushed != len(closure)-1 {
		t.Fatalf("summary %s, want 1 upstream", s.JSON())
	}
	mustVerify(t, o, false) // references to the upstream path resolve upstream

	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close() // connection refused from now on
	o2 := dirOptions(t.TempDir(), newKey(t, "up-1"))
	o2.Upstreams = []string{dead.URL}
	start := time.Now()
	s, err = nixcache.Push(tctx(t), o2, []string{system})
	if err != nil || s.Pushed != len(closure) {
		t.Fatalf("push with a dead upstream: %v %s", err, s.JSON())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("a dead upstream stalled the push for %v", d)
	}
}
