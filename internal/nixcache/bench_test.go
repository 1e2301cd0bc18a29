package nixcache_test

// The cache benchmarks (`mage bench:cache` runs them all, once each):
//
//   - BenchmarkCacheLink: cold and warm pushes of a 2,001-path closure
//     (reference depth 41) and of a 420 MB one to a GCS stand-in behind a
//     simulated link (50 ms per request, 100 MB/s each way), against the
//     old pipeline's shape on the same link: nix copy to a file:// cache,
//     then one listing of the bucket and the missing files uploaded by as
//     many workers as gsutil -m uses on this machine; and against the
//     link's floor, bytes ÷ bandwidth + depth × latency.
//   - BenchmarkCacheDir: the 2,001-path closure into a local directory,
//     against nix copy.
//   - BenchmarkCacheWatch: a 30-derivation build with and without pushing
//     while building, and a build whose last derivation fails.
//   - BenchmarkCacheGC: GC of a cache of 24,000 objects on the link.
//
// Push and GC run as their own processes (the test binary re-executed,
// see TestMain) under GNU time, for their wall time and peak RSS.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/nixcache"
	"github.com/socioprophet/sourceos/internal/nixstore"
	"github.com/socioprophet/sourceos/internal/testrig"
)

const (
	linkLatency   = 50 * time.Millisecond
	linkBandwidth = 100_000_000 // bytes per second, each way
)

// linkBackend is the GCS server BenchmarkCacheLink puts behind the link:
// the lean stand-in (memgcs) or fake-gcs-server.
var linkBackend = flag.String("nixcache.link-backend", "memgcs", "BenchmarkCacheLink: memgcs or fake-gcs-server behind the link")

// rsyncWorkers is what gsutil -m runs at once on this machine: min(CPUs,
// 32) processes of 5 threads each.
var rsyncWorkers = min(runtime.NumCPU(), 32) * 5

// benchRow is one measured run.
type benchRow struct {
	name   string
	secs   float64
	rssMiB float64
	note   string
}

// benchTable prints rows and ratios at the end of a benchmark.
type benchTable struct {
	title string
	rows  []benchRow
	lines []string
}

func (t *benchTable) add(r benchRow) { t.rows = append(t.rows, r) }

func (t *benchTable) line(format string, args ...any) {
	t.lines = append(t.lines, fmt.Sprintf(format, args...))
}

func (t *benchTable) print() {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%s (GOMAXPROCS %d)\n", t.title, runtime.GOMAXPROCS(0))
	fmt.Fprintf(&b, "%-44s %9s %9s  %s\n", "run", "seconds", "peak RSS", "note")
	for _, r := range t.rows {
		rss := ""
		if r.rssMiB > 0 {
			rss = fmt.Sprintf("%.0f MiB", r.rssMiB)
		}
		fmt.Fprintf(&b, "%-44s %9.3f %9s  %s\n", r.name, r.secs, rss, r.note)
	}
	for _, l := range t.lines {
		fmt.Fprintln(&b, l)
	}
	fmt.Print(b.String()) // b.Log truncates benchmark output
}

// benchBuild builds a package of the benchmark flake with real Nix and
// returns its root and closure.
func benchBuild(b *testing.B, attr string) (string, []nixstore.PathInfo) {
	b.Helper()
	isolateNix(b)
	flake, err := filepath.Abs("testdata/bench-flake")
	if err != nil {
		b.Fatal(err)
	}
	root := testrig.Build(b, "path:"+flake+"#"+attr)[0]
	infos, err := nixstore.Query(tctx(b), gcsOptions(keyPair{}).Runner, root)
	if err != nil {
		b.Fatal(err)
	}
	return root, infos
}

// depthOf is the number of paths on the longest chain of references.
func depthOf(infos []nixstore.PathInfo) int {
	byPath := map[string]nixstore.PathInfo{}
	for _, pi := range infos {
		byPath[pi.Path] = pi
	}
	memo := map[string]int{}
	var depth func(p string) int
	depth = func(p string) int {
		if d, ok := memo[p]; ok {
			return d
		}
		d := 1
		for _, r := range byPath[p].References {
			if _, ok := byPath[r]; ok && r != p {
				d = max(d, depth(r)+1)
			}
		}
		memo[p] = d
		return d
	}
	most := 0
	for _, pi := range infos {
		most = max(most, depth(pi.Path))
	}
	return most
}

func narBytes(infos []nixstore.PathInfo) int64 {
	var n int64
	for _, pi := range infos {
		n += int64(pi.NarSize)
	}
	return n
}

// storedBytes is the bytes of the objects under a store.
func storedBytes(b *testing.B, s blob.Store) (objects int, bytes int64) {
	b.Helper()
	if err := s.List(tctx(b), "", func(i blob.Info) error { objects++; bytes += i.Size; return nil }); err != nil {
		b.Fatal(err)
	}
	return objects, bytes
}

// BenchmarkCacheLink pushes to a GCS stand-in behind a simulated link.
func BenchmarkCacheLink(b *testing.B) {
	k := newKey(b, "bench-1")
	keyFile := filepath.Join(b.TempDir(), "sk")
	writeFile(b, keyFile, k.secret)
	for _, attr := range []string{"small", "large"} {
		b.Run(attr, func(b *testing.B) {
			for b.Loop() {
				t := &benchTable{title: fmt.Sprintf("Simulated link: %s per request, %d MB/s each way; old pipeline's upload with %d workers",
					linkLatency, linkBandwidth/1_000_000, rsyncWorkers)}
				linkClosure(b, t, attr, k, keyFile)
				t.print()
			}
		})
	}
}

// linkClosure measures one closure on the link: three rounds, each a
// cold and a warm push to a fresh prefix and the old pipeline's shape cold
// and warm to another, alternating which goes first; medians, every run
// listed.
func linkClosure(b *testing.B, t *benchTable, attr string, k keyPair, keyFile string) {
	root, infos := benchBuild(b, attr)
	depth := depthOf(infos)
	lo := testrig.LinkOptions{Latency: linkLatency, Bandwidth: linkBandwidth, Buckets: []string{"cache"}}
	if *linkBackend == "fake-gcs-server" {
		lo.Backend = testrig.StartGCS(b, "cache").Host
	}
	link := testrig.StartLink(b, lo)
	env := "STORAGE_EMULATOR_HOST=" + link.Host
	runs := map[string][]float64{}
	rss := map[string]float64{}
	notes := map[string]string{}
	add := func(name string, secs, r float64) {
		runs[name] = append(runs[name], secs)
		rss[name] = max(rss[name], r)
	}
	var bytesStored int64
	var objects int
	for round := range 3 {
		ours := func() {
			prefix := fmt.Sprintf("ours-%d", round)
			spec := childSpec{Bucket: "cache", Prefix: prefix, Secret: k.secret, Paths: []string{root}, Timeout: 10 * time.Minute}
			for _, phase := range []string{"cold", "warm"} {
				before := link.Stats()
				s, r := measure(b, childPush(b, spec, env), checkSummary(b, phase, len(infos)))
				after := link.Stats()
				add("push "+phase, s, r)
				notes["push "+phase] = fmt.Sprintf("%d requests, %.1f MB up", after.Requests-before.Requests, float64(after.Up-before.Up)/1e6)
			}
			store, err := blob.Open(tctx(b), "gs://cache/"+prefix)
			if err != nil {
				b.Fatal(err)
			}
			objects, bytesStored = storedBytes(b, store)
		}
		old := func() {
			for _, phase := range []string{"cold", "warm"} {
				dir := filepath.Join(b.TempDir(), "c") // a fresh one each run, as on a CI runner
				copySecs, r := measure(b, exec.Command("nix", "copy", "--to", "file://"+dir+"?compression=zstd&secret-key="+keyFile, root), nil)
				up, n := rsyncShape(b, dir, fmt.Sprintf("gs://cache/old-%d", round))
				add("old copy "+phase, copySecs, r)
				add("old upload "+phase, up, 0)
				add("old "+phase, copySecs+up, 0)
				notes["old upload "+phase] = fmt.Sprintf("%d files uploaded", n)
			}
		}
		if round%2 == 0 {
			ours()
			old()
		} else {
			old()
			ours()
		}
	}
	floor := float64(bytesStored)/linkBandwidth + float64(depth)*linkLatency.Seconds()
	for _, r := range []struct{ key, label string }{
		{"push cold", "push cold"}, {"push warm", "push warm"},
		{"old copy cold", "old: nix copy zstd to file://, cold"}, {"old upload cold", "old: list + upload, cold"}, {"old cold", "old pipeline cold, total"},
		{"old copy warm", "old: nix copy zstd to file://, warm"}, {"old upload warm", "old: list + upload, warm"}, {"old warm", "old pipeline warm, total"},
	} {
		note := fmt.Sprint(round3(runs[r.key]))
		if n := notes[r.key]; n != "" {
			note += "; " + n
		}
		t.add(benchRow{name: attr + " " + r.label, secs: median(runs[r.key]), rssMiB: rss[r.key], note: note})
	}
	t.add(benchRow{name: attr + " link floor", secs: floor, note: fmt.Sprintf("%d objects, %.1f MB stored; depth %d", objects, float64(bytesStored)/1e6, depth)})
	cold, warm, oldCold := median(runs["push cold"]), median(runs["push warm"]), median(runs["old cold"])
	t.line("%s: %d paths, %.0f MB of NAR, depth %d (medians):", attr, len(infos), float64(narBytes(infos))/1e6, depth)
	t.line("  old cold / push cold = %.1fx (goal >= 5); push cold / floor = %.2fx (goal <= 1.5); push warm = %.3f s (goal < 1 s)",
		oldCold/cold, cold/floor, warm)
	b.ReportMetric(cold, attr+"-cold-s")
	b.ReportMetric(warm, attr+"-warm-s")
	b.ReportMetric(cold/floor, attr+"-cold/floor")
	b.ReportMetric(oldCold/cold, attr+"-old/cold")
}

// rsyncShape uploads a file:// cache the way `gsutil -m rsync` does: one
// listing of the destination, then every file it lacks (or holds with
// another size), rsyncWorkers at a time, through the GCS client. It
// returns the seconds and the files uploaded.
func rsyncShape(b *testing.B, dir, dest string) (float64, int) {
	b.Helper()
	start := time.Now()
	store, err := blob.Open(tctx(b), dest)
	if err != nil {
		b.Fatal(err)
	}
	have := map[string]int64{}
	if err := store.List(tctx(b), "", func(i blob.Info) error { have[i.Key] = i.Size; return nil }); err != nil {
		b.Fatal(err)
	}
	var todo []string
	err = filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		st, err := e.Info()
		if err != nil {
			return err
		}
		if size, ok := have[filepath.ToSlash(rel)]; !ok || size != st.Size() {
			todo = append(todo, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	next := make(chan string)
	var wg sync.WaitGroup
	for range rsyncWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for key := range next {
				f, err := os.Open(filepath.Join(dir, key))
				if err != nil {
					b.Error(err)
					continue
				}
				st, _ := f.Stat()
				if err := store.Put(tctx(b), key, f, blob.PutOptions{SizeHint: st.Size()}); err != nil {
					b.Error(err)
				}
				f.Close()
			}
		}()
	}
	for _, k := range todo {
		next <- k
	}
	close(next)
	wg.Wait()
	return time.Since(start).Seconds(), len(todo)
}

// BenchmarkCacheDir pushes the 2,001-path closure into a local directory,
// against nix copy: three rounds, each cold (a fresh directory) then
// warm, the two tools alternating; medians, every run listed. File
// creation on a shared machine varies a lot from one second to the next,
// which alternating rounds spread over both tools.
func BenchmarkCacheDir(b *testing.B) {
	root, infos := benchBuild(b, "small")
	k := newKey(b, "bench-1")
	keyFile := filepath.Join(b.TempDir(), "sk")
	writeFile(b, keyFile, k.secret)
	for b.Loop() {
		t := &benchTable{title: fmt.Sprintf("Local directory: %d paths, %.1f MB of NAR; three rounds, alternating", len(infos), float64(narBytes(infos))/1e6)}
		runs := map[string][]float64{}
		rss := map[string]float64{}
		for range 3 {
			spec := childSpec{Dir: b.TempDir(), Secret: k.secret, Paths: []string{root}}
			copyDir := filepath.Join(b.TempDir(), "c")
			for _, phase := range []string{"cold", "warm"} {
				s, r := measure(b, childPush(b, spec), checkSummary(b, phase, len(infos)))
				runs["push "+phase] = append(runs["push "+phase], s)
				rss["push "+phase] = max(rss["push "+phase], r)
				s, r = measure(b, exec.Command("nix", "copy", "--to", "file://"+copyDir+"?compression=zstd&secret-key="+keyFile, root), nil)
				runs["nix copy "+phase] = append(runs["nix copy "+phase], s)
				rss["nix copy "+phase] = max(rss["nix copy "+phase], r)
			}
		}
		for _, name := range []string{"push cold", "nix copy cold", "push warm", "nix copy warm"} {
			label := strings.Replace(name, "push", "push to a directory", 1)
			if strings.HasPrefix(name, "nix copy") {
				label = strings.Replace(name, "nix copy", "nix copy zstd to file://", 1)
			}
			t.add(benchRow{name: label, secs: median(runs[name]), rssMiB: rss[name], note: fmt.Sprint(round3(runs[name]))})
		}
		cold := median(runs["push cold"]) / median(runs["nix copy cold"])
		t.line("push cold / nix copy cold = %.2f (goal <= 1); push warm / nix copy warm = %.2f (medians)",
			cold, median(runs["push warm"])/median(runs["nix copy warm"]))
		t.print()
		b.ReportMetric(median(runs["push cold"]), "dir-cold-s")
		b.ReportMetric(cold, "dir-cold/nixcopy")
	}
}

// BenchmarkCacheWatch measures pushing while building: the build's wall
// time with and without it (five rounds each, alternating, median), the
// time to a full cache either way, and a build whose last derivation
// fails. Two chains of 30 derivations: "chain", whose steps do next to
// nothing (the hook's cost per derivation shows most), and "busy", whose
// steps compute for about a third of a second each.
func BenchmarkCacheWatch(b *testing.B) {
	isolateNix(b)
	k := newKey(b, "bench-1")
	testrig.StartLink(b, testrig.LinkOptions{Latency: linkLatency, Bandwidth: linkBandwidth, Buckets: []string{"cache"}})
	for b.Loop() {
		t := &benchTable{title: "Pushing while building: chains of 30 derivations (1 MiB each), GCS stand-in behind the link"}
		for _, attr := range []string{"chain", "busy"} {
			var plain, hooked, drained, atEnd []float64
			for round := range 5 {
				o := gcsOptions(k)
				o.Jobs = 0 // the default, as a build uses
				plainRun := func() {
					o.Prefix = fmt.Sprintf("%s-%d", attr, round)
					built, pushed := buildThenPush(b, o, attr)
					plain, atEnd = append(plain, built), append(atEnd, pushed)
				}
				hookedRun := func() {
					o.Prefix = fmt.Sprintf("%s-hook-%d", attr, round)
					h, d := buildWatched(b, o, attr)
					hooked, drained = append(hooked, h), append(drained, d)
				}
				if round%2 == 0 { // alternate which goes first
					plainRun()
					hookedRun()
				} else {
					hookedRun()
					plainRun()
				}
			}
			mp, mh, md, me := median(plain), median(hooked), median(drained), median(atEnd)
			t.add(benchRow{name: attr + ": nix build alone", secs: mp, note: fmt.Sprint(round3(plain))})
			t.add(benchRow{name: attr + ": nix build, pushing while building", secs: mh, note: fmt.Sprint(round3(hooked))})
			t.add(benchRow{name: attr + ":   ... until the push has drained", secs: md, note: fmt.Sprint(round3(drained))})
			t.add(benchRow{name: attr + ": nix build, then push at the end", secs: me, note: fmt.Sprint(round3(atEnd))})
			t.line("%s: overhead on the build %+.1f %% (goal < 5 %%); cache complete %.2f s after the build started, against %.2f s pushing at the end",
				attr, 100*(mh/mp-1), md, me)
			b.ReportMetric(100*(mh/mp-1), attr+"-overhead-%")
		}
		share, n := failedBuildShare(b, k)
		t.line("failed build: %d of %d paths built before the failure are in the cache (%.0f %%; goal: all)", share, n, 100*float64(share)/float64(max(n, 1)))
		t.print()
		b.ReportMetric(float64(share)/float64(max(n, 1)), "failed-build-share")
	}
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func round3(xs []float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = float64(int(x*1000+0.5)) / 1000
	}
	return out
}

// buildThenPush builds a chain, then pushes its closure: the build's
// seconds and the seconds until the cache holds it.
func buildThenPush(b *testing.B, o nixcache.Options, attr string) (built, pushed float64) {
	flake := watchFlake(b)
	start := time.Now()
	if out, err := nixBuild(b, flake+"#packages.x86_64-linux."+attr); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	built = time.Since(start).Seconds()
	root := testrig.Build(b, flake+"#packages.x86_64-linux."+attr)[0]
	if s, err := nixcache.Push(tctx(b), o, []string{root}); err != nil || s.Pushed != 30 {
		b.Fatalf("push: %v %s", err, s.JSON())
	}
	return built, time.Since(start).Seconds()
}

// buildWatched builds a chain pushing while building: the build's seconds
// and the seconds until the push has drained.
func buildWatched(b *testing.B, o nixcache.Options, attr string) (built, drained float64) {
	flake := watchFlake(b)
	start := time.Now()
	w, err := nixcache.StartWatch(tctx(b), o, nixcache.WatchOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if out, err := nixBuild(b, flake+"#packages.x86_64-linux."+attr, w.NixArgs()...); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	built = time.Since(start).Seconds()
	s, err := w.Close(tctx(b), nil)
	if err != nil || s.Pushed != 30 {
		b.Fatalf("watch: %v %s", err, s.JSON())
	}
	return built, time.Since(start).Seconds()
}

// failedBuildShare builds the chain and a failing derivation on top with
// a watcher: how many of the paths built before the failure are then in
// the cache, of how many.
func failedBuildShare(b *testing.B, k keyPair) (inCache, built int) {
	o := gcsOptions(k)
	o.Jobs = 0
	o.Prefix = "watch-failed"
	w, err := nixcache.StartWatch(tctx(b), o, nixcache.WatchOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if out, err := nixBuild(b, watchFlake(b)+"#packages.x86_64-linux.chainfail", w.NixArgs()...); err == nil {
		b.Fatalf("the failing build succeeded:\n%s", out)
	}
	if _, err := w.Finish(tctx(b)); err != nil {
		b.Fatal(err)
	}
	store, err := blob.Open(tctx(b), "gs://cache/watch-failed")
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range w.Built() {
		if _, err := store.Stat(tctx(b), nixstore.HashPart(p)+".narinfo"); err == nil {
			inCache++
		}
	}
	mustVerify(b, o, false)
	return inCache, len(w.Built())
}

// BenchmarkCacheGC collects a cache of six 2,001-path closures (24,000
// objects) on the link: three roots expire.
func BenchmarkCacheGC(b *testing.B) {
	k := newKey(b, "bench-1")
	seeds := []string{"small", "small-b", "small-c", "small-d", "small-e", "small-f"}
	var roots []string
	for _, s := range seeds {
		root, _ := benchBuild(b, s)
		roots = append(roots, root)
	}
	for b.Loop() {
		link := testrig.StartLink(b, testrig.LinkOptions{Buckets: []string{"cache"}})
		o := gcsOptions(k)
		o.Jobs = 0
		now := time.Now()
		for i, root := range roots {
			o.Root = nixcache.RootOptions{Name: "bench", BuildID: seeds[i]}
			ahead := -time.Duration(60-i) * 24 * time.Hour // the store's clock and the pusher's agree
			link.GCS.SetClock(func() time.Time { return time.Now().Add(ahead) })
			o.Now = func() time.Time { return time.Now().Add(ahead) }
			if _, err := nixcache.Push(tctx(b), o, []string{root}); err != nil {
				b.Fatal(err)
			}
		}
		link.GCS.SetClock(func() time.Time { return now.Add(2 * time.Hour).Add(time.Since(now)) })
		store, err := blob.Open(tctx(b), "gs://cache/nix-cache")
		if err != nil {
			b.Fatal(err)
		}
		objects, bytes := storedBytes(b, store)
		link.SetLatency(linkLatency)
		link.SetBandwidth(linkBandwidth)
		spec := childSpec{Bucket: "cache", Secret: k.secret, PubKey: k.public, GC: true, Timeout: 10 * time.Minute}
		var sum nixcache.GCSummary
		secs, rss := measure(b, childPush(b, spec, "STORAGE_EMULATOR_HOST="+link.Host), func(out string) { sum = gcSummary(b, out) })
		link.SetLatency(0)
		after, afterBytes := storedBytes(b, store)
		rep := mustVerify(b, gcsOptions(k), false)
		t := &benchTable{title: fmt.Sprintf("GC on the link (%s per request): %d objects, %.1f MB, six roots of one name, the oldest three expire", linkLatency, objects, float64(bytes)/1e6)}
		t.add(benchRow{name: "cache:gc", secs: secs, rssMiB: rss, note: sum.JSON()})
		t.line("after: %d objects, %.1f MB; verify: %d narinfos, %d NARs, %d problems (goal: clean; peak RSS goal < 200 MiB)",
			after, float64(afterBytes)/1e6, rep.Narinfos, rep.NARs, len(rep.Problems))
		t.print()
		if sum.FreedObjects == 0 {
			b.Fatal("gc freed nothing")
		}
		b.ReportMetric(secs, "gc-s")
		b.ReportMetric(rss, "gc-peak-rss-MiB")
	}
}

func gcSummary(b *testing.B, out string) nixcache.GCSummary {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "GCSUMMARY "); ok {
			var s nixcache.GCSummary
			if err := json.Unmarshal([]byte(line), &s); err != nil {
				b.Fatal(err)
			}
			return s
		}
	}
	b.Fatalf("no GC summary in:\n%s", out)
	return nixcache.GCSummary{}
}

// measure runs cmd and returns its wall time and peak RSS; check, if set,
// inspects its output. The RSS comes from GNU time, which forks the command
// from its own small process: a child that Go starts directly inherits the
// benchmark process's high-water mark (vfork, then exec), which holds the
// GCS stand-in's objects.
func measure(b *testing.B, cmd *exec.Cmd, check func(out string)) (secs, rssMiB float64) {
	timeBin := testrig.RequireTool(b, "time")
	rssFile := filepath.Join(b.TempDir(), "rss")
	cmd.Args = append([]string{timeBin, "-f", "%M", "-o", rssFile}, cmd.Args...)
	cmd.Path = timeBin
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("%s: %v\n%s", cmd, err, out.String())
	}
	secs = time.Since(start).Seconds()
	if check != nil {
		check(out.String())
	}
	raw, err := os.ReadFile(rssFile)
	if err != nil {
		b.Fatal(err)
	}
	kib, err := strconv.ParseFloat(strings.TrimSpace(string(raw)), 64)
	if err != nil {
		b.Fatalf("GNU time output %q: %v", raw, err)
	}
	return secs, kib / 1024
}

// checkSummary makes sure a push moved what it should have: every path on
// a cold run, none on a warm one.
func checkSummary(b *testing.B, phase string, paths int) func(string) {
	return func(out string) {
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			line, ok := strings.CutPrefix(sc.Text(), "SUMMARY ")
			if !ok {
				continue
			}
			var s nixcache.Summary
			if err := json.Unmarshal([]byte(line), &s); err != nil {
				b.Fatal(err)
			}
			if (phase == "cold" && s.Pushed != paths) || (phase == "warm" && s.Present != paths) {
				b.Fatalf("%s push moved the wrong amount: %s", phase, line)
			}
			return
		}
		b.Fatalf("no summary in push output:\n%s", out)
	}
}

func writeFile(b testing.TB, path, content string) {
	b.Helper()
	if err := writeFile0600(path, content); err != nil {
		b.Fatal(err)
	}
}
