package nixcache_test

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/nixcache"
	"github.com/socioprophet/sourceos/internal/nixstore"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// watchFlake copies testdata/watch-flake with a fresh nonce, so that
// every derivation in it is new and Nix builds it (running the hook).
func watchFlake(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join("testdata", "watch-flake")
	for _, f := range []string{"flake.nix"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, f), string(b))
	}
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	writeFile(t, filepath.Join(dir, "nonce"), hex.EncodeToString(nonce[:])+"\n")
	return "path:" + dir
}

// nixBuild runs nix build of installable with extra arguments.
func nixBuild(t testing.TB, installable string, extra ...string) (string, error) {
	t.Helper()
	args := append([]string{"build", "--no-link", "--json", installable}, extra...)
	out, err := exec.CommandContext(tctx(t), "nix", args...).CombinedOutput()
	return string(out), err
}

// A build whose last derivation fails still leaves every path it built
// in the cache, complete, and real Nix substitutes them.
func TestWatchPushesWhatAFailedBuildBuilt(t *testing.T) {
	isolateNix(t)
	flake := watchFlake(t)
	link := testrig.StartLink(t, testrig.LinkOptions{Latency: 5 * time.Millisecond, Buckets: []string{"cache"}})
	k := newKey(t, "watch-1")
	o := gcsOptions(k)
	w, err := nixcache.StartWatch(tctx(t), o, nixcache.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := nixBuild(t, flake+"#packages.x86_64-linux.c", w.NixArgs()...); err == nil {
		t.Fatalf("the failing build succeeded:\n%s", out)
	} else if !strings.Contains(out, "fails on purpose") {
		t.Fatalf("the build failed for another reason: %v\n%s", err, out)
	}
	sum, err := w.Finish(tctx(t))
	if err != nil {
		t.Fatalf("finish: %v (%s)", err, sum.JSON())
	}
	built := w.Built()
	if len(built) != 2 || !strings.HasSuffix(built[0], "-watch-a") || !strings.HasSuffix(built[1], "-watch-b") {
		t.Fatalf("the hook reported %v, want watch-a then watch-b", built)
	}
	store, err := blob.Open(tctx(t), "gs://cache/nix-cache")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range built {
		if _, err := store.Stat(tctx(t), nixstore.HashPart(p)+".narinfo"); err != nil {
			t.Errorf("%s was built before the failure but is not in the cache: %v", p, err)
		}
	}
	if keys := listKeys(t, store); countPrefix(keys, "roots/") != 0 {
		t.Errorf("a failed build recorded a root: %v", keys)
	}
	mustVerify(t, o, true)
	if out, err := substitute(t, link.URL("cache", "nix-cache"), k.public, built...); err != nil {
		t.Fatalf("nix could not substitute what the failed build pushed: %v\n%s", err, out)
	}
}

func countPrefix(keys []string, prefix string) int {
	n := 0
	for _, k := range keys {
		if strings.HasPrefix(k, prefix) {
			n++
		}
	}
	return n
}

// A build that succeeds is pushed as it goes and closed with a root that
// names its output and keeps its whole closure.
func TestWatchRecordsRootOfSuccessfulBuild(t *testing.T) {
	isolateNix(t)
	flake := watchFlake(t)
	dir := t.TempDir()
	k := newKey(t, "watch-1")
	o := dirOptions(dir, k)
	o.Root = nixcache.RootOptions{Name: "watch-test", BuildID: "b-7"}
	w, err := nixcache.StartWatch(tctx(t), o, nixcache.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := nixBuild(t, flake+"#packages.x86_64-linux.ok", w.NixArgs()...); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	sum, err := w.Close(tctx(t), nil)
	if err != nil || sum.Pushed != 3 || sum.Failed != 0 {
		t.Fatalf("close: %v %s; want the 3 built paths pushed", err, sum.JSON())
	}
	built := w.Built()
	store, _ := blob.OpenDir(dir)
	roots := rootsIn(t, store, k)
	if len(roots) != 1 {
		t.Fatalf("roots %v, want one", roots)
	}
	r := roots[0]
	if r.Name != "watch-test" || r.BuildID != "b-7" || len(r.Paths) != 1 || r.Paths[0] != built[2] || len(r.Closure) != 3 {
		t.Fatalf("root %+v, want watch-test/b-7 naming %s with a closure of 3", r, built[2])
	}
	mustVerify(t, o, true)
}

// rootsIn reads every root of a store, checked with k.
func rootsIn(t testing.TB, s blob.Store, k keyPair) []*nixcache.Root {
	t.Helper()
	pk := publicKey(t, k)
	var out []*nixcache.Root
	for _, key := range listKeys(t, s) {
		if !strings.HasPrefix(key, "roots/") {
			continue
		}
		r, err := nixcache.ParseRoot(readObject(t, s, key), pk)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		out = append(out, r)
	}
	return out
}

// cache:watch runs any command with the hook added to the caller's
// NIX_CONFIG (here the test rig's, whose sandbox settings the build
// needs) and pushes what it builds.
func TestRunWatchedKeepsCallersNixConfig(t *testing.T) {
	isolateNix(t)
	flake := watchFlake(t)
	dir := t.TempDir()
	k := newKey(t, "watch-1")
	o := dirOptions(dir, k)
	o.Root.Name = "watch"
	var out strings.Builder
	sum, err := nixcache.RunWatched(tctx(t), o, []string{"nix", "build", "--no-link", flake + "#packages.x86_64-linux.ok"}, &out, &out)
	if err != nil || sum.Pushed != 3 {
		t.Fatalf("cache watch: %v %s\n%s", err, sum.JSON(), out.String())
	}
	store, _ := blob.OpenDir(dir)
	if roots := rootsIn(t, store, k); len(roots) != 1 || roots[0].Name != "watch" {
		t.Fatalf("roots %+v", roots)
	}
	_, err = nixcache.RunWatched(tctx(t), o, []string{"nix", "build", "--no-link", flake + "#packages.x86_64-linux.c"}, &out, &out)
	if err == nil {
		t.Fatal("a failing command reported success")
	}
}

// A spool line longer than any store path (something other than the hook
// wrote it, or wrote garbage) is skipped and counted, and logged once: the
// watcher never stalls on it. The paths on the lines after it are pushed
// and named by the root, and the summary and the error say what was
// skipped; whether the watcher reads the spool while it is written or
// only once the build is done (more than one read's worth at once).
func TestWatchSkipsOverlongSpoolLines(t *testing.T) {
	isolateNix(t)
	system, netboot := fixture(t)
	for _, c := range []struct {
		name string
		poll time.Duration
	}{{"read while written", 10 * time.Millisecond}, {"read at the end", time.Hour}} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			k := newKey(t, "watch-1")
			o := dirOptions(dir, k)
			o.Root.Name = "watch-overlong"
			var log strings.Builder
			o.Log = newTestLogger(&log)
			w, err := nixcache.StartWatch(tctx(t), o, nixcache.WatchOptions{Poll: c.poll})
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(nixcache.SpoolOf(w), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			// More than one read of the spool (4 MiB) without a newline, then
			// a line just over the limit, each between valid lines.
			for _, line := range []string{system, strings.Repeat("x", 5<<20), "/nix/store/" + strings.Repeat("y", 5000), netboot} {
				if _, err := f.WriteString(line + "\n"); err != nil {
					t.Fatal(err)
				}
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			sum, err := w.Close(tctx(t), nil)
			t.Logf("watch: %s; %v", sum.JSON(), err)
			if !errors.Is(err, nixcache.ErrSpoolLine) || sum.SpoolErrors != 2 || !strings.Contains(sum.JSON(), `"spool_errors":2`) {
				t.Errorf("summary %s, error %v; want two skipped spool lines counted and reported", sum.JSON(), err)
			}
			if n := strings.Count(log.String(), "skipped a spool line"); n != 1 {
				t.Errorf("logged the skipped lines %d times, want once:\n%s", n, log.String())
			}
			store, _ := blob.OpenDir(dir)
			roots := rootsIn(t, store, k)
			if len(roots) != 1 {
				t.Fatalf("roots %v, want one", roots)
			}
			inRoot := map[string]bool{}
			for _, h := range roots[0].Closure {
				inRoot[h] = true
			}
			for _, p := range testrig.Closure(t, system, netboot) {
				if !inRoot[nixstore.HashPart(p)] {
					t.Errorf("the root lacks %s", p)
				}
			}
			mustVerify(t, o, true)
			if out, err := substitute(t, "file://"+dir, k.public, system, netboot); err != nil {
				t.Fatalf("nix could not substitute what the watcher pushed: %v\n%s", err, out)
			}
		})
	}
}
