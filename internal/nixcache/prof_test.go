package nixcache_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/socioprophet/sourceos/internal/nixcache"
	"github.com/socioprophet/sourceos/internal/nixstore"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// benchClosure builds the benchmark closure with real Nix and returns its
// root and path infos.
func benchClosure(b *testing.B) (string, []nixstore.PathInfo) {
	b.Helper()
	isolateNix(b)
	flake, err := filepath.Abs("testdata/bench-flake")
	if err != nil {
		b.Fatal(err)
	}
	root := testrig.Build(b, "path:"+flake+"#default")[0]
	infos, err := nixstore.Query(tctx(b), gcsOptions(keyPair{}).Runner, root)
	if err != nil {
		b.Fatal(err)
	}
	return root, infos
}

// BenchmarkPushCold pushes the benchmark closure in process (for
// -cpuprofile), cold, to a directory, to a GCS upload sink and to the GCS
// emulator.
func BenchmarkPushCold(b *testing.B) {
	_, infos := benchClosure(b)
	var narBytes int64
	for _, pi := range infos {
		narBytes += int64(pi.NarSize)
	}
	k := newKey(b, "bench-1")
	for _, dest := range []string{"dir", "sink", "gcs"} {
		b.Run(dest, func(b *testing.B) {
			b.SetBytes(narBytes)
			for i := 0; b.Loop(); i++ {
				o := gcsOptions(k)
				o.Jobs = 16
				switch dest {
				case "dir":
					o = dirOptions(b.TempDir(), k)
					o.Jobs = 16
				case "sink":
					b.Setenv("STORAGE_EMULATOR_HOST", startGCSSink(b).Host())
				case "gcs":
					testrig.StartGCS(b, "cache")
				}
				o.Prefix = fmt.Sprintf("p%d", i)
				s, err := nixcache.PushPaths(tctx(b), o, infos)
				if err != nil || s.Pushed != len(infos) {
					b.Fatalf("%v %s", err, s.JSON())
				}
				b.ReportMetric(float64(s.UploadedBytes)/float64(s.NarBytes), "compressed/NAR")
			}
		})
	}
}

// BenchmarkPushWarm pushes the benchmark closure in process to a GCS
// emulator that already holds all of it.
func BenchmarkPushWarm(b *testing.B) {
	_, infos := benchClosure(b)
	k := newKey(b, "bench-1")
	testrig.StartGCS(b, "cache")
	o := gcsOptions(k)
	if _, err := nixcache.PushPaths(tctx(b), o, infos); err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"list", "head"} {
		b.Run(mode, func(b *testing.B) {
			if mode == "head" {
				nixcache.SetListThreshold(b, len(infos)+1)
			}
			for b.Loop() {
				s, err := nixcache.PushPaths(tctx(b), o, infos)
				if err != nil || s.Present != len(infos) {
					b.Fatalf("%v %s", err, s.JSON())
				}
			}
		})
	}
}
