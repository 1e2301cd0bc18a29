package nixcache_test

// BenchmarkCacheScale (`mage bench:cacheScale`): the cache at the sizes a
// daily-fed cache reaches, on the GCS stand-in behind the simulated link.
// For each size N it pushes the 2,001-path benchmark closure (the live
// set: the newest root of its name), seeds expired garbage around it
// until the bucket holds about N objects (closures of 2,000 paths signed
// with push proofs, as pushes leave them, and their expired roots), and
// records N in gc/stats as a previous GC would have. Then, each as its
// own process under GNU time (wall time, peak RSS, own CPU) with the
// requests it made by kind:
//
//   - a warm push of the live closure (all present);
//   - cache:verify (full);
//   - cache:gc (keeping the newest root of each name and roots younger
//     than 45 days: the live set), then cache:verify again and real Nix
//     substituting the live closure;
//   - a cold push of 2,001 new paths, then an incremental cache:verify.
//
// With -nixcache.race=N it also seeds N objects around the live closure
// and an expired one, starts cache:gc, and as soon as it deletes pushes
// the expired closure again: afterwards cache:verify must be clean and
// Nix must substitute both closures.

import (
	"bufio"
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/nixcache"
	"github.com/socioprophet/sourceos/internal/testrig"
)

var (
	scaleSizes = flag.String("nixcache.scale", "25000,100000", "BenchmarkCacheScale: the cache sizes (objects), comma separated; N:op+op measures only those operations (push, verify, gc, incremental) at N")
	raceSize   = flag.Int("nixcache.race", 0, "BenchmarkCacheScale: the size of the push-racing-GC run (0: none)")
)

// scaleKeep are the GC policy of the scale runs: the newest root of each
// name, and roots younger than 45 days.
const scaleKeepLast, scaleKeepDays = 1, 45

func BenchmarkCacheScale(b *testing.B) {
	live, liveInfos := benchBuild(b, "small")
	fresh, freshInfos := benchBuild(b, "small-b")
	raced, _ := benchBuild(b, "small-c")
	k := newKey(b, "scale-1")
	for b.Loop() {
		t := &benchTable{title: fmt.Sprintf("Cache at scale on the simulated link (%s per request, %d MB/s); live set %d paths", linkLatency, linkBandwidth/1_000_000, len(liveInfos))}
		for _, f := range strings.Split(*scaleSizes, ",") {
			if f = strings.TrimSpace(f); f == "" {
				continue
			}
			size, only, _ := strings.Cut(f, ":")
			n, err := strconv.Atoi(size)
			if err != nil {
				b.Fatalf("-nixcache.scale: %v", err)
			}
			ops := map[string]bool{"push": true, "verify": true, "gc": true, "incremental": true}
			if only != "" {
				ops = map[string]bool{}
				for _, op := range strings.Split(only, "+") {
					ops[op] = true
				}
			}
			scaleRun(b, t, n, ops, k, live, fresh, len(freshInfos))
		}
		if *raceSize > 0 {
			raceRun(b, t, *raceSize, k, live, raced)
		}
		t.print()
	}
}

// scaleCache is a seeded cache behind the link.
type scaleCache struct {
	link    *testrig.Link
	store   blob.Store
	k       keyPair
	objects int
	env     string
}

// seedScale makes a cache of about n objects: live pushed two days ago
// (by the store's clock) as the newest root of its name, extra closures
// pushed a hundred days ago, and garbage around them.
func seedScale(b *testing.B, n int, k keyPair, live string, extra ...string) *scaleCache {
	link := testrig.StartLink(b, testrig.LinkOptions{Buckets: []string{"cache"}})
	c := &scaleCache{link: link, k: k, env: "STORAGE_EMULATOR_HOST=" + link.Host}
	var err error
	if c.store, err = blob.Open(tctx(b), "gs://cache/nix-cache"); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	push := func(path, id string, ago time.Duration) {
		at := func() time.Time { return time.Now().Add(-ago) }
		link.GCS.SetClock(at)
		o := gcsOptions(k)
		o.Jobs, o.Now = 0, at
		o.Root = nixcache.RootOptions{Name: "live", BuildID: id}
		if _, err := nixcache.Push(tctx(b), o, []string{path}); err != nil {
			b.Fatal(err)
		}
	}
	for i, p := range extra {
		push(p, fmt.Sprintf("old-%d", i), 100*24*time.Hour)
	}
	push(live, "live", 48*time.Hour)
	link.GCS.SetClock(nil)
	before, _ := link.GCS.Objects()
	start := time.Now()
	seeded := seedGarbage(b, link, "cache", "nix-cache", k, n-before, testrig.Closure(b, live), now.Add(-90*24*time.Hour))
	c.objects = before + seeded
	seedStats(b, c.store, c.objects)
	fmt.Printf("seeded %d objects around %d in %.1f s\n", seeded, before, time.Since(start).Seconds())
	runtime.GC() // the seeding's garbage collected now, not while a child runs
	link.SetLatency(linkLatency)
	link.SetBandwidth(linkBandwidth)
	return c
}

// scaleRun measures the operations ops at about n objects.
func scaleRun(b *testing.B, t *benchTable, n int, ops map[string]bool, k keyPair, live, fresh string, freshPaths int) {
	c := seedScale(b, n, k, live)
	label := func(s string) string { return fmt.Sprintf("%dk: %s", n/1000, s) }
	if ops["push"] {
		// A warm push is short: the median of warmRuns, every run listed.
		runs := make([]childResult, warmRuns)
		for i := range runs {
			runs[i] = c.run(b, childSpec{Bucket: "cache", Secret: k.secret, Paths: []string{live}, Timeout: 10 * time.Minute}, nil)
		}
		r, all := medianRun(runs)
		t.add(benchRow{name: label("push warm"), secs: r.secs, rssMiB: r.rss, note: r.note(fmt.Sprintf("%s; own CPU %.2f s; median of %s", r.line("SUMMARY "), r.cpu, all))})
		b.ReportMetric(r.secs, fmt.Sprintf("push-warm-%dk-s", n/1000))
		b.ReportMetric(r.cpu, fmt.Sprintf("push-warm-%dk-cpu-s", n/1000))
	}
	if ops["verify"] {
		r := c.run(b, childSpec{Bucket: "cache", Verify: true, Secret: k.secret, PubKey: k.public, Timeout: 30 * time.Minute}, nil)
		t.add(benchRow{name: label("cache:verify"), secs: r.secs, rssMiB: r.rss, note: r.note(r.report())})
		b.ReportMetric(r.rss, fmt.Sprintf("verify-%dk-rss-MiB", n/1000))
	}
	if ops["gc"] {
		r := c.run(b, childSpec{Bucket: "cache", GC: true, Secret: k.secret, PubKey: k.public, GCKeepLast: scaleKeepLast,
			GCKeepDays: scaleKeepDays, Timeout: 60 * time.Minute}, nil)
		var sum nixcache.GCSummary
		if err := json.Unmarshal([]byte(r.line("GCSUMMARY ")), &sum); err != nil {
			b.Fatalf("gc summary: %v\n%s", err, r.out)
		}
		basis := r.stats.Kinds["list"] + int64(sum.FreedObjects) + r.stats.Kinds["read"]
		t.add(benchRow{name: label("cache:gc"), secs: r.secs, rssMiB: r.rss, note: r.note(fmt.Sprintf("%s; requests / (list pages + deletes + reads) = %.3f",
			r.line("GCSUMMARY "), float64(r.stats.Requests)/float64(max(basis, 1))))})
		b.ReportMetric(r.rss, fmt.Sprintf("gc-%dk-rss-MiB", n/1000))
		if left, _ := c.link.GCS.Objects(); left > 5*2001+100 {
			b.Errorf("%d objects left after gc, want the live set's (about %d)", left, 2*2001)
		}
		after := c.run(b, childSpec{Bucket: "cache", Verify: true, Secret: k.secret, PubKey: k.public, Timeout: 30 * time.Minute}, nil)
		t.add(benchRow{name: label("cache:verify after gc"), secs: after.secs, rssMiB: after.rss, note: after.note(after.report())})
		c.link.SetLatency(0)
		if out, err := substitute(b, c.link.URL("cache", "nix-cache"), k.public, live); err != nil {
			b.Fatalf("nix could not substitute the live closure after gc: %v\n%s", err, out)
		}
		c.link.SetLatency(linkLatency)
	}
	if ops["incremental"] {
		if !ops["gc"] { // a clean full audit records the watermark
			c.run(b, childSpec{Bucket: "cache", Verify: true, Secret: k.secret, PubKey: k.public, Timeout: 30 * time.Minute}, nil)
		}
		p := c.run(b, childSpec{Bucket: "cache", Secret: k.secret, Paths: []string{fresh}, Timeout: 10 * time.Minute}, nil)
		t.add(benchRow{name: label(fmt.Sprintf("push cold, %d new paths", freshPaths)), secs: p.secs, rssMiB: p.rss, note: p.note(p.line("SUMMARY "))})
		r := c.run(b, childSpec{Bucket: "cache", Verify: true, Incremental: true, Secret: k.secret, PubKey: k.public, Timeout: 30 * time.Minute}, nil)
		t.add(benchRow{name: label("cache:verify incremental"), secs: r.secs, rssMiB: r.rss, note: r.note(r.report())})
	}
}

// raceRun seeds n objects around live and an expired closure raced, runs
// cache:gc, pushes raced again as soon as GC deletes, and checks that
// nothing is lost.
func raceRun(b *testing.B, t *benchTable, n int, k keyPair, live, raced string) {
	c := seedScale(b, n, k, live, raced)
	gcSpec := childSpec{Bucket: "cache", GC: true, Secret: k.secret, PubKey: k.public, GCKeepLast: scaleKeepLast, GCKeepDays: scaleKeepDays, Timeout: 60 * time.Minute}
	pushed := make(chan childResult, 1)
	r := c.run(b, gcSpec, func() {
		before := c.link.Stats().Kinds["batch"]
		for c.link.Stats().Kinds["batch"] == before { // the first batch of deletes
			time.Sleep(20 * time.Millisecond)
		}
		go func() {
			pushed <- c.run(b, childSpec{Bucket: "cache", Secret: k.secret, Paths: []string{raced}, Timeout: 10 * time.Minute}, nil)
		}()
	})
	p := <-pushed
	label := fmt.Sprintf("%dk: ", n/1000)
	t.add(benchRow{name: label + "cache:gc, a push racing it", secs: r.secs, rssMiB: r.rss, note: r.line("GCSUMMARY ")})
	t.add(benchRow{name: label + "push of an expired closure during the sweep", secs: p.secs, rssMiB: p.rss, note: p.line("SUMMARY ")})
	v := c.run(b, childSpec{Bucket: "cache", Verify: true, Secret: k.secret, PubKey: k.public, Timeout: 30 * time.Minute}, nil)
	if v.code != 0 {
		b.Fatalf("cache:verify after the race: %s", v.out)
	}
	c.link.SetLatency(0)
	if out, err := substitute(b, c.link.URL("cache", "nix-cache"), k.public, live, raced); err != nil {
		b.Fatalf("nix could not substitute after the race: %v\n%s", err, out)
	}
	t.add(benchRow{name: label + "after the race", secs: v.secs, rssMiB: v.rss, note: "cache:verify clean (" + v.report() + "); Nix substitutes both closures"})
}

// warmRuns is how many times a warm push runs at each size.
const warmRuns = 5

// medianRun is the run of median wall time, and every run's time and own
// CPU time in order.
func medianRun(runs []childResult) (childResult, string) {
	var all []string
	for _, r := range runs {
		all = append(all, fmt.Sprintf("%.2f s (CPU %.2f s)", r.secs, r.cpu))
	}
	sorted := slices.Clone(runs)
	slices.SortFunc(sorted, func(a, b childResult) int { return cmp.Compare(a.secs, b.secs) })
	return sorted[len(sorted)/2], strings.Join(all, ", ")
}

// childResult is one measured child process.
type childResult struct {
	secs, rss, cpu float64
	code           int
	out            string
	stats          testrig.LinkStats
}

// line is the rest of the output line starting with prefix.
func (r childResult) line(prefix string) string {
	sc := bufio.NewScanner(strings.NewReader(r.out))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			return rest
		}
	}
	return ""
}

// report summarises a verify child's report.
func (r childResult) report() string {
	var rep nixcache.Report
	if err := json.Unmarshal([]byte(r.line("REPORT ")), &rep); err != nil {
		return "no report: " + err.Error()
	}
	return fmt.Sprintf("%d narinfos (%d read), %d NARs, %d problems, incremental %v", rep.Narinfos, rep.Read, rep.NARs, len(rep.Problems), rep.Incremental)
}

// note adds the requests to s.
func (r childResult) note(s string) string {
	return fmt.Sprintf("%s; %d requests %v, %.1f MB down", s, r.stats.Requests, r.stats.Kinds, float64(r.stats.Down)/1e6)
}

// run runs spec as a child under GNU time and returns what it measured;
// during, when set, runs once the child started.
func (c *scaleCache) run(b *testing.B, spec childSpec, during func()) childResult {
	b.Helper()
	cmd := childPush(b, spec, c.env)
	before := c.link.Stats()
	var res childResult
	timeBin := testrig.RequireTool(b, "time")
	rssFile := b.TempDir() + "/rss"
	cmd.Args = append([]string{timeBin, "-f", "%M", "-o", rssFile}, cmd.Args...)
	cmd.Path = timeBin
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	if during != nil {
		during()
	}
	err := cmd.Wait()
	res.secs = time.Since(start).Seconds()
	res.stats = c.link.Stats().Sub(before)
	res.out = out.String()
	if ee, ok := err.(*exec.ExitError); ok {
		res.code = ee.ExitCode()
	} else if err != nil {
		b.Fatal(err)
	}
	if res.code != 0 && !(spec.Verify && res.code == 1) {
		b.Fatalf("%v: exit %d\n%s", spec, res.code, res.out)
	}
	if raw, err := os.ReadFile(rssFile); err == nil {
		if kib, err := strconv.ParseFloat(strings.TrimSpace(string(raw)), 64); err == nil {
			res.rss = kib / 1024
		}
	}
	if f := strings.Fields(res.line("SELFCPU ")); len(f) == 2 {
		u, _ := strconv.ParseFloat(f[0], 64)
		s, _ := strconv.ParseFloat(f[1], 64)
		res.cpu = u + s
	}
	for _, l := range strings.Split(strings.TrimSpace(res.out), "\n") {
		if len(l) > 300 {
			l = l[:300] + "…"
		}
		fmt.Println("  " + l)
	}
	fmt.Printf("  -> %.2f s, %.0f MiB, %d requests\n", res.secs, res.rss, res.stats.Requests)
	return res
}
