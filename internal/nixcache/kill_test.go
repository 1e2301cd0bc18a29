package nixcache_test

import (
	"encoding/json"
	"fmt"
	"github.com/socioprophet/sourceos/internal/blob"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/nixcache"
	"github.com/socioprophet/sourceos/internal/testrig"
)

const childEnv = "NIXCACHE_TEST_CHILD_PUSH"

// childSpec tells a re-executed test binary what to push.
type childSpec struct {
	Bucket, Dir, Secret string
	Paths               []string
	Jobs                int
}

// TestChildPush is the body of the subprocess that TestKilledPushResumes
// kills and BenchmarkCache measures; it does nothing unless started by them.
func TestChildPush(t *testing.T) {
	raw, ok := os.LookupEnv(childEnv)
	if !ok {
		t.Skip("helper process for TestKilledPushResumes and BenchmarkCache")
	}
	var spec childSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		t.Fatal(err)
	}
	o := nixcache.Options{Bucket: spec.Bucket, Dir: spec.Dir, SecretKey: config.NewSecret(spec.Secret), Jobs: spec.Jobs}
	o.Runner = gcsOptions(keyPair{}).Runner
	s, err := nixcache.Push(bg, o, spec.Paths)
	fmt.Println("SUMMARY " + s.JSON())
	if err != nil {
		t.Fatal(err)
	}
}

// childPush returns the command that runs TestChildPush with spec.
func childPush(t testing.TB, spec childSpec, env ...string) *exec.Cmd {
	raw, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildPush$", "-test.count=1", "-test.v")
	cmd.Env = append(append(os.Environ(), childEnv+"="+string(raw)), env...)
	return cmd
}

// startDelayProxy slows every request down by a random 0-30ms, so a push
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

func TestKilledPushResumes(t *testing.T) {
	isolateNix(t)
	system, netboot := fixture(t)
	g := testrig.StartGCS(t, "cache")
	host := startDelayProxy(t, g.Host)
	k := newKey(t, "kill-1")
	spec := childSpec{Bucket: "cache", Secret: k.secret, Paths: []string{system, netboot}, Jobs: 2}

	total := len(testrig.Closure(t, netboot))
	store, err := blob.Open(bg, "gs://cache/nix-cache")
	if err != nil {
		t.Fatal(err)
	}
	partial := 0
	for i := range 8 {
		cmd := childPush(t, spec, "STORAGE_EMULATOR_HOST="+host)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill it right after a random number of objects has appeared.
		have := len(listKeys(t, store))
		waitForObjects(t, store, have+1+rand.IntN(max(1, 1+2*total-have-1)), cmd)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		// Whatever the moment of death, what is published is consistent.
		rep, err := nixcache.Verify(bg, gcsOptions(k), true)
		if err != nil && !onlyMissingCacheInfo(rep) {
			t.Fatalf("after kill %d: %v\n%v", i, err, rep.Problems)
		}
		t.Logf("after kill %d: %d narinfos, %d NARs", i, rep.Narinfos, rep.NARs)
		if rep.Narinfos < total && rep.NARs > 0 {
			partial++
		}
	}
	if partial == 0 {
		t.Fatal("no push was killed mid-way; the test proved nothing")
	}
	s, err := nixcache.Push(bg, gcsOptions(k), []string{system, netboot})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d kills left a partial cache; final push: %s", partial, s.JSON())
	mustVerify(t, gcsOptions(k), true)
	if out, err := substitute(t, g.URL("cache", "nix-cache"), k.public, netboot); err != nil {
		t.Fatalf("nix could not substitute after interrupted pushes: %v\n%s", err, out)
	}
}

// waitForObjects returns once store holds n objects or cmd has exited.
func waitForObjects(t *testing.T, store blob.Store, n int, cmd *exec.Cmd) {
	exited := make(chan struct{})
	go func() {
		for cmd.ProcessState == nil && cmd.Process.Signal(syscall.Signal(0)) == nil {
			time.Sleep(time.Millisecond)
		}
		close(exited)
	}()
	for {
		select {
		case <-exited:
			return
		default:
		}
		if len(listKeys(t, store)) >= n {
			return
		}
		time.Sleep(time.Millisecond)
	}
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
				sums[i], errs[i] = nixcache.Push(bg, gcsOptions(k), paths)
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
