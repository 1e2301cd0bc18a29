package bench_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/bench"
	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// buildSignBench compiles the signbench command into dir.
func buildSignBench(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "signbench")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, "./signbench")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build signbench: %v\n%s", err, out)
	}
	return bin
}

// A small run of the real benchmark: every flow runs with the real tools
// in each round, checks it read every byte, and reports time, the ratio
// to b2sum of the same round, and peak RSS.
func TestRunSmall(t *testing.T) {
	for _, tool := range []string{"b2sum", "sha256sum", "minisign", "/usr/bin/time"} {
		testrig.RequireTool(t, tool)
	}
	dir := t.TempDir()
	var progress bytes.Buffer
	rep, err := bench.Run(context.Background(), bench.Options{
		Dir: dir, Size: 48 << 20, Runs: 3, SignBench: buildSignBench(t, t.TempDir()), Run: &execx.Exec{}, Progress: &progress,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if rep.Bytes != 48<<20 || rep.Runs != 3 || len(rep.Measurements) != 6 || rep.BusyCores != 0 {
		t.Fatalf("report: %+v", rep)
	}
	for _, m := range rep.Measurements {
		if len(m.Seconds) != 3 || len(m.Ratios) != 3 || len(m.CPUSeconds) != 3 || m.MaxRSSKiB <= 0 {
			t.Errorf("%s: %+v", m.Name, m)
		}
		if x := m.Ratio(); x.Min <= 0 || x.Min > x.Median || x.Median > x.Max {
			t.Errorf("%s: ratio spread %+v", m.Name, x)
		}
	}
	if b, _ := rep.Get(bench.FlowB2sum); b.Ratio() != (bench.Spread{Median: 1, Min: 1, Max: 1}) {
		t.Errorf("b2sum ratio %+v", b.Ratio())
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil || !strings.Contains(text.String(), bench.FlowOurVerify) || !strings.Contains(text.String(), "load average") {
		t.Errorf("table: %v\n%s", err, text.String())
	}
	if err := rep.WriteTargets(&text); err != nil || strings.Count(text.String(), "goal ≤ 1.10×") != 2 ||
		!strings.Contains(text.String(), bench.FlowOurHash+": ") || !strings.Contains(text.String(), "quiet") {
		t.Errorf("verdicts: %v\n%s", err, text.String())
	}
	t.Log("\n" + text.String())
}

// The loaded pass runs b2sum, our hash and ours with a thread of the
// harness spinning, and says so; its verdicts are for information.
func TestRunLoaded(t *testing.T) {
	for _, tool := range []string{"b2sum", "/usr/bin/time"} {
		testrig.RequireTool(t, tool)
	}
	b, err := bench.Prepare(bench.Options{Dir: t.TempDir(), Size: 16 << 20, Runs: 2,
		SignBench: buildSignBench(t, t.TempDir()), Run: &execx.Exec{}})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := b.Measure(context.Background(), 1, true)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range rep.Measurements {
		names = append(names, m.Name)
	}
	want := []string{bench.FlowB2sum, bench.FlowOurHash, bench.FlowOurSign, bench.FlowOurVerify}
	if strings.Join(names, "|") != strings.Join(want, "|") || rep.BusyCores != 1 {
		t.Fatalf("flows %q, busy %d", names, rep.BusyCores)
	}
	var text bytes.Buffer
	_ = rep.WriteText(&text)
	_ = rep.WriteTargets(&text)
	if !strings.Contains(text.String(), "loaded (1 busy thread(s)") || strings.Count(text.String(), "for information") != 2 {
		t.Errorf("loaded report:\n%s", text.String())
	}
}

func TestSpread(t *testing.T) {
	m := bench.Measurement{Seconds: []float64{3, 1, 2, 5, 4}}
	if got := m.Time(); got != (bench.Spread{Median: 3, Min: 1, Max: 5}) {
		t.Errorf("odd count: %+v", got)
	}
	m.Seconds = []float64{4, 1, 2, 3}
	if got := m.Time(); got != (bench.Spread{Median: 2.5, Min: 1, Max: 4}) {
		t.Errorf("even count: %+v", got)
	}
}

func TestParseTime(t *testing.T) {
	got, err := bench.ParseTime("some output\nBENCH 1.25 20480 2.00 0.10\n")
	if err != nil || got != (bench.Timing{Wall: 1.25, MaxRSSKiB: 20480, User: 2, System: 0.1}) {
		t.Errorf("got %+v %v", got, err)
	}
	for _, bad := range []string{"", "BENCH x 1 1 1\n", "BENCH 1 1\n", "Command exited with non-zero status 1\n"} {
		if _, err := bench.ParseTime(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// BenchmarkFlows is the full-size run (what `mage bench:sign` prints):
// go test -run '^$' -bench Flows -benchtime 1x ./internal/bench
func BenchmarkFlows(b *testing.B) {
	for _, tool := range []string{"b2sum", "sha256sum", "minisign", "/usr/bin/time"} {
		testrig.RequireTool(b, tool)
	}
	bin := filepath.Join(b.TempDir(), "signbench")
	if out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, "./signbench").CombinedOutput(); err != nil {
		b.Fatalf("go build signbench: %v\n%s", err, out)
	}
	for b.Loop() {
		rep, err := bench.Run(context.Background(), bench.Options{Dir: b.TempDir(), SignBench: bin, Run: &execx.Exec{}})
		if err != nil {
			b.Fatal(err)
		}
		var text bytes.Buffer
		_ = rep.WriteText(&text)
		_ = rep.WriteTargets(&text)
		b.Log("\n" + text.String())
	}
}

// The path reported is the one this CPU offers first, in x/crypto's order.
func TestBLAKE2bPath(t *testing.T) {
	got := bench.BLAKE2bPath()
	if runtime.GOARCH != "amd64" {
		t.Skip("amd64 only")
	}
	flags := cpuFlags(t)
	want := "generic Go (no SSE4.1, AVX or AVX2 reported)"
	switch {
	case flags["avx2"]:
		want = "AVX2"
	case flags["avx"]:
		want = "AVX"
	case flags["sse4_1"]:
		want = "SSE4.1"
	}
	if got != want {
		t.Errorf("BLAKE2bPath() = %q; /proc/cpuinfo's flags say %q", got, want)
	}
}

func cpuFlags(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Skip(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "flags" {
			flags := map[string]bool{}
			for _, f := range strings.Fields(v) {
				flags[f] = true
			}
			return flags
		}
	}
	t.Skip("no flags line in /proc/cpuinfo")
	return nil
}
