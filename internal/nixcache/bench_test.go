package nixcache_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/nix-community/go-nix/pkg/nar"

	"github.com/socioprophet/sourceos/internal/nixcache"
	"github.com/socioprophet/sourceos/internal/nixstore"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// benchRow is one measured run.
type benchRow struct {
	name   string
	secs   float64
	rssMiB float64
	note   string
}

// BenchmarkCache compares, on one machine and one closure (about 250 paths,
// 270 MB of NAR; testdata/bench-flake), nix copy to a file:// cache (xz and
// zstd) with our push to a directory and to the GCS emulator, cold and
// warm, and the floor: hashing and zstd-compressing the same NAR bytes in
// memory on all cores. Run it once: go test -run '^$' -bench
// '^BenchmarkCache$' -benchtime 1x ./internal/nixcache/ (mage bench:cache).
func BenchmarkCache(b *testing.B) {
	root, infos := benchClosure(b)
	var narBytes int64
	for _, pi := range infos {
		narBytes += int64(pi.NarSize)
	}
	k := newKey(b, "bench-1")
	keyFile := filepath.Join(b.TempDir(), "sk")
	writeFile(b, keyFile, k.secret)
	for b.Loop() {
		rows := runBench(b, root, len(infos), k, keyFile, infos)
		report(b, rows, len(infos), narBytes)
	}
}

func runBench(b *testing.B, root string, paths int, k keyPair, keyFile string, infos []nixstore.PathInfo) []benchRow {
	var rows []benchRow
	for _, comp := range []string{"xz", "zstd"} {
		dir := b.TempDir()
		for _, phase := range []string{"cold", "warm"} {
			url := "file://" + dir + "?compression=" + comp + "&secret-key=" + keyFile
			secs, rss := measure(b, exec.Command("nix", "copy", "--to", url, root), nil)
			rows = append(rows, benchRow{name: "nix copy " + comp + " " + phase, secs: secs, rssMiB: rss})
		}
	}
	dir := b.TempDir()
	for _, phase := range []string{"cold", "warm"} {
		spec := childSpec{Dir: dir, Secret: k.secret, Paths: []string{root}, Jobs: 16}
		secs, rss := measure(b, childPush(b, spec), checkSummary(b, phase, paths))
		rows = append(rows, benchRow{name: "push dir " + phase, secs: secs, rssMiB: rss})
	}
	testrig.StartGCS(b, "cache")
	for _, phase := range []string{"cold", "warm"} {
		spec := childSpec{Bucket: "cache", Secret: k.secret, Paths: []string{root}, Jobs: 16}
		secs, rss := measure(b, childPush(b, spec), checkSummary(b, phase, paths))
		rows = append(rows, benchRow{name: "push gcs " + phase, secs: secs, rssMiB: rss, note: "emulator shares the 2 cores"})
	}
	mustVerify(b, gcsOptions(k), false)
	sink := startGCSSink(b)
	spec := childSpec{Bucket: "cache", Secret: k.secret, Paths: []string{root}, Jobs: 16}
	secs, rss := measure(b, childPush(b, spec, "STORAGE_EMULATOR_HOST="+sink.Host()), checkSummary(b, "cold", paths))
	if got := sink.bytes.Load(); got == 0 {
		b.Fatal("the GCS sink received nothing")
	}
	rows = append(rows, benchRow{name: "push gcs-sink cold", secs: secs, rssMiB: rss, note: "upload endpoints that discard"})
	rows = append(rows, floor(b, infos))
	return rows
}

// measure runs cmd and returns its wall time and peak RSS; check, if set,
// inspects its stdout. The RSS comes from GNU time, which forks the command
// from its own small process: a child that Go starts directly inherits the
// benchmark process's high-water mark (vfork, then exec), which holds the
// GCS emulator's objects.
func measure(b *testing.B, cmd *exec.Cmd, check func(stdout string)) (secs, rssMiB float64) {
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

// floor hashes and zstd-compresses every NAR, held in memory, on all cores.
func floor(b *testing.B, infos []nixstore.PathInfo) benchRow {
	nars := make([][]byte, len(infos))
	for i, pi := range infos {
		var buf bytes.Buffer
		if err := nar.DumpPath(&buf, pi.Path); err != nil {
			b.Fatal(err)
		}
		nars[i] = buf.Bytes()
	}
	start := time.Now()
	var wg sync.WaitGroup
	next := make(chan []byte)
	var mu sync.Mutex
	var out int64
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			enc, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderCRC(false)) // as the push
			for data := range next {
				h := sha256.Sum256(data)
				c := &byteCount{}
				enc.Reset(c)
				_, _ = enc.Write(data)
				_ = enc.Close()
				fh := sha256.New()
				_, _ = io.Copy(fh, bytes.NewReader(h[:])) // keep the hash live
				mu.Lock()
				out += c.n
				mu.Unlock()
			}
		}()
	}
	for _, d := range nars {
		next <- d
	}
	close(next)
	wg.Wait()
	if out == 0 {
		b.Fatal("floor compressed nothing")
	}
	return benchRow{name: "floor (sha256+zstd in memory)", secs: time.Since(start).Seconds(), note: fmt.Sprintf("%d MiB compressed", out>>20)}
}

type byteCount struct{ n int64 }

func (c *byteCount) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func report(b *testing.B, rows []benchRow, paths int, narBytes int64) {
	by := map[string]benchRow{}
	var t strings.Builder
	fmt.Fprintf(&t, "\nclosure: %d paths, %.0f MiB of NAR, GOMAXPROCS %d\n", paths, float64(narBytes)/(1<<20), runtime.GOMAXPROCS(0))
	fmt.Fprintf(&t, "%-32s %8s %9s  %s\n", "run", "seconds", "peak RSS", "note")
	for _, r := range rows {
		by[r.name] = r
		fmt.Fprintf(&t, "%-32s %8.2f %6.0f MiB  %s\n", r.name, r.secs, r.rssMiB, r.note)
	}
	zc, fl := by["nix copy zstd cold"].secs, by["floor (sha256+zstd in memory)"].secs
	gc, gw := by["push gcs cold"].secs, by["push gcs warm"].secs
	fmt.Fprintf(&t, "nix copy zstd cold / push gcs cold = %.1fx (target >= 2)\n", zc/gc)
	fmt.Fprintf(&t, "push gcs cold / floor             = %.1fx (target <= 1.5)\n", gc/fl)
	fmt.Fprintf(&t, "nix copy zstd cold / push gcs warm = %.0fx (target >= 20)\n", zc/gw)
	fmt.Fprintf(&t, "nix copy zstd warm / push gcs warm = %.1fx\n", by["nix copy zstd warm"].secs/gw)
	sc := by["push gcs-sink cold"].secs
	fmt.Fprintf(&t, "nix copy zstd cold / push sink cold = %.1fx; push sink cold / floor = %.1fx\n", zc/sc, sc/fl)
	fmt.Print(t.String()) // b.Log truncates benchmark output
	b.ReportMetric(gc, "gcs-cold-s")
	b.ReportMetric(gw, "gcs-warm-s")
	b.ReportMetric(zc, "nixcopy-zstd-cold-s")
	b.ReportMetric(fl, "floor-s")
	b.ReportMetric(max(by["push gcs cold"].rssMiB, by["push dir cold"].rssMiB), "push-peak-rss-MiB")
}

func writeFile(b testing.TB, path, content string) {
	b.Helper()
	if err := writeFile0600(path, content); err != nil {
		b.Fatal(err)
	}
}
