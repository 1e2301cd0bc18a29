package nixcache_test

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/nixcache"
	"github.com/socioprophet/sourceos/internal/nixstore"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// startDelayProxy slows every request down by a random 0-50ms, so a push
// lasts long enough to be killed in the middle.
func startDelayProxy(t *testing.T, target string) string {
	u, _ := url.Parse("http://" + target)
	rp := httputil.NewSingleHostReverseProxy(u)
	director := rp.Director
	rp.Director = func(r *http.Request) { director(r); r.Host = u.Host }
	rp.ErrorLog = log.New(io.Discard, "", 0) // killed clients make it noisy
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Duration(rand.IntN(50)) * time.Millisecond)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// fullCount is the number of objects a complete cache of infos holds:
// nix-cache-info, one narinfo per path and one NAR per distinct NarHash
// (paths with identical contents share their NAR).
func fullCount(infos []nixstore.PathInfo) int {
	nars := map[string]bool{}
	for _, pi := range infos {
		nars[pi.NarHash] = true
	}
	return 1 + len(infos) + len(nars)
}

func TestKilledPushResumes(t *testing.T) {
	isolateNix(t)
	system, netboot := fixture(t)
	g := testrig.StartGCS(t, "cache")
	host := startDelayProxy(t, g.Host)
	k := newKey(t, "kill-1")
	infos, err := nixstore.Query(tctx(t), gcsOptions(k).Runner, system, netboot)
	if err != nil {
		t.Fatal(err)
	}
	full := fullCount(infos)
	o := gcsOptions(k)
	partial := 0
	for i := range 8 {
		store, err := blob.Open(tctx(t), "gs://cache/"+o.Prefix)
		if err != nil {
			t.Fatal(err)
		}
		have := len(listKeys(t, store))
		if have >= full {
			// A child finished the cache before its kill: carry on in a
			// fresh prefix so that every kill interrupts a push.
			o.Prefix = fmt.Sprintf("nix-cache-%d", i)
			have = 0
			if store, err = blob.Open(tctx(t), "gs://cache/"+o.Prefix); err != nil {
				t.Fatal(err)
			}
		}
		spec := childSpec{Bucket: "cache", Prefix: o.Prefix, Secret: k.secret, Paths: []string{system, netboot}, Jobs: 2}
		c := startChild(t, childPush(t, spec, "STORAGE_EMULATOR_HOST="+host))
		// Kill it right after a random number of objects has appeared,
		// fewer than a complete cache.
		target := have + 1 + rand.IntN(max(1, full-have-1))
		c.waitForObjects(t, store, target, time.Minute)
		c.kill(t)
		// Whatever the moment of death, what is published is consistent.
		rep, err := nixcache.Verify(tctx(t), o, true)
		if err != nil && !onlyMissingCacheInfo(rep) {
			t.Fatalf("after kill %d: %v\n%v", i, err, rep.Problems)
		}
		t.Logf("after kill %d (at %d objects of %d): %d narinfos, %d NARs", i, target, full, rep.Narinfos, rep.NARs)
		if rep.Narinfos < len(infos) && rep.NARs > 0 {
			partial++
		}
	}
	if partial == 0 {
		t.Fatal("no push was killed mid-way; the test proved nothing")
	}
	s, err := nixcache.Push(tctx(t), o, []string{system, netboot})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d kills left a partial cache; final push: %s", partial, s.JSON())
	mustVerify(t, o, true)
	if out, err := substitute(t, g.URL("cache", o.Prefix), k.public, netboot); err != nil {
		t.Fatalf("nix could not substitute after interrupted pushes: %v\n%s", err, out)
	}
}

// child is a started push process whose output is kept for diagnosis.
type child struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
}

func startChild(t *testing.T, cmd *exec.Cmd) *child {
	t.Helper()
	c := &child{cmd: cmd, out: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = c.out, c.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(c.exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-c.exited })
	return c
}

// waitForObjects returns once store holds n objects or the child has
// exited. Past timeout it asks the child for its goroutine stacks
// (SIGQUIT) and fails the test with them.
func (c *child) waitForObjects(t *testing.T, store blob.Store, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-c.exited:
			return
		default:
		}
		have := len(listKeys(t, store))
		if have >= n {
			return
		}
		if time.Now().After(deadline) {
			_ = c.cmd.Process.Signal(syscall.SIGQUIT)
			select {
			case <-c.exited:
			case <-time.After(10 * time.Second):
			}
			t.Fatalf("after %s the push child had neither exited nor written %d objects (store holds %d); its output:\n%s",
				timeout, n, have, c.out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// kill kills the child and waits (boundedly) until it is gone.
func (c *child) kill(t *testing.T) {
	t.Helper()
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("the push child did not exit 30s after SIGKILL; its output:\n%s", c.out.String())
	}
}

// syncBuffer is a bytes.Buffer safe for the writers of a child's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A push killed before it wrote nix-cache-info leaves an empty cache,
// which is consistent.
func onlyMissingCacheInfo(rep nixcache.Report) bool {
	return len(rep.Problems) == 1 && rep.Problems[0].Key == "nix-cache-info" && rep.Narinfos == 0
}

func TestConcurrentOverlappingPushes(t *testing.T) {
	isolateNix(t)
	system, netboot := fixture(t)
	for round := range 3 {
		g := testrig.StartGCS(t, "cache")
		k := newKey(t, "race-1")
		var wg sync.WaitGroup
		sums := make([]nixcache.Summary, 3)
		errs := make([]error, 3)
		for i, paths := range [][]string{{system}, {netboot}, {netboot, system}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sums[i], errs[i] = nixcache.Push(tctx(t), gcsOptions(k), paths)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: push %d failed: %v", round, i, err)
			}
		}
		if n := len(testrig.Closure(t, netboot)); sums[2].Pushed+sums[2].Present != n {
			t.Fatalf("round %d: %s", round, sums[2].JSON())
		}
		rep := mustVerify(t, gcsOptions(k), true)
		if rep.Narinfos != len(testrig.Closure(t, netboot)) {
			t.Fatalf("round %d: %d narinfos", round, rep.Narinfos)
		}
		if round == 0 {
			if out, err := substitute(t, g.URL("cache", "nix-cache"), k.public, netboot); err != nil {
				t.Fatalf("nix could not substitute: %v\n%s", err, out)
			}
		}
	}
}
