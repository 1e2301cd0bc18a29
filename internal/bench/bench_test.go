package bench_test

import (
	"bytes"
	"context"
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

// A small run of the real benchmark: every flow runs with the real tools,
// checks it read every byte, and reports time and peak RSS.
func TestRunSmall(t *testing.T) {
	for _, tool := range []string{"b2sum", "sha256sum", "minisign", "/usr/bin/time"} {
		testrig.RequireTool(t, tool)
	}
	dir := t.TempDir()
	var progress bytes.Buffer
	rep, err := bench.Run(context.Background(), bench.Options{
		Dir: dir, Size: 48 << 20, SignBench: buildSignBench(t, t.TempDir()), Run: &execx.Exec{}, Progress: &progress,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if rep.Bytes != 48<<20 || len(rep.Measurements) != 5 {
		t.Fatalf("report: %+v", rep)
	}
	for _, m := range rep.Measurements {
		if m.Seconds <= 0 || m.MaxRSSKiB <= 0 || m.Ratio <= 0 || m.CPUSeconds <= 0 {
			t.Errorf("%s: %+v", m.Name, m)
		}
	}
	if b, _ := rep.Get(bench.FlowB2sum); b.Ratio != 1 {
		t.Errorf("b2sum ratio %v", b.Ratio)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil || !strings.Contains(text.String(), bench.FlowOurVerify) {
		t.Errorf("table: %v\n%s", err, text.String())
	}
	t.Log("\n" + text.String())
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
