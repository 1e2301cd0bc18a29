package nixcache_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"syscall"
	"testing"
	"time"

	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/nixcache"
)

// childEnv, when set, turns the test binary into a push (or audit) process
// (see TestMain): TestKilledPushResumes kills it, BenchmarkCache and
// TestVerifyDeepBombs measure it.
const childEnv = "NIXCACHE_TEST_CHILD_PUSH"

// childSpec tells a re-executed test binary what to push.
type childSpec struct {
	Bucket, Prefix, Dir, Secret string
	Paths                       []string
	Jobs                        int
	// Timeout bounds the push (default 2 minutes); past it the child
	// prints every goroutine's stack and exits 3, so a stall is diagnosed
	// rather than waited on.
	Timeout time.Duration
	// Verify makes the child audit the cache (deeply if Deep) with PubKey
	// instead of pushing; it prints the report on a "REPORT " line and
	// exits 0 when the cache is clean, 1 otherwise.
	Verify, Deep bool
	PubKey       string
	// GC makes the child collect the cache instead (ages by the store's
	// clock, which the parent sets) and print the summary on a
	// "GCSUMMARY " line.
	GC         bool
	GCWorkers  int
	GCLease    time.Duration
	GCKeepLast int
	GCKeepDays int
	// Incremental makes a Verify child audit only what was written since
	// the last clean run.
	Incremental bool
	// CPUProfile, when set, is where the child writes its CPU profile.
	CPUProfile string
}

// TestMain runs the push body when the binary was started by childPush,
// and the tests otherwise. No test is skipped to make room for the child.
func TestMain(m *testing.M) {
	if raw, ok := os.LookupEnv(childEnv); ok {
		os.Exit(runChild(raw))
	}
	os.Exit(m.Run())
}

// runChild pushes what raw (a JSON childSpec) names and prints the summary
// on a "SUMMARY " line (or audits: see childSpec.Verify). Exit codes: 0
// pushed (clean), 1 push failed (problems found), 2 bad spec, 3 timed out
// (stacks on stderr), 4 the audit could not run.
func runChild(raw string) int {
	var spec childSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "child push: bad spec:", err)
		return 2
	}
	if spec.Timeout <= 0 {
		spec.Timeout = 2 * time.Minute
	}
	watchdog := time.AfterFunc(spec.Timeout, func() {
		buf := make([]byte, 1<<20)
		fmt.Fprintf(os.Stderr, "child push: still running after %s; goroutines:\n%s\n", spec.Timeout, buf[:runtime.Stack(buf, true)])
		os.Exit(3)
	})
	defer watchdog.Stop()
	if spec.CPUProfile != "" {
		if f, err := os.Create(spec.CPUProfile); err == nil {
			_ = pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	o := nixcache.Options{Bucket: spec.Bucket, Prefix: spec.Prefix, Dir: spec.Dir,
		SecretKey: config.NewSecret(spec.Secret), Jobs: spec.Jobs, Runner: &execx.Exec{}}
	defer printSelfCPU()
	if spec.Verify {
		return runChildVerify(o, spec)
	}
	if spec.GC {
		return runChildGC(o, spec)
	}
	s, err := nixcache.Push(context.Background(), o, spec.Paths)
	fmt.Println("SUMMARY " + s.JSON())
	if err != nil {
		fmt.Fprintln(os.Stderr, "child push:", err)
		return 1
	}
	return 0
}

// printSelfCPU prints the CPU time this process spent itself (its
// children, nix, excluded) on a "SELFCPU <user> <system>" line, seconds.
func printSelfCPU() {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		fmt.Printf("SELFCPU %.3f %.3f\n", time.Duration(ru.Utime.Nano()).Seconds(), time.Duration(ru.Stime.Nano()).Seconds())
	}
}

func runChildGC(o nixcache.Options, spec childSpec) int {
	o.PubKey = spec.PubKey
	o.GC = nixcache.GCOptions{Grace: time.Hour, Settle: time.Millisecond, Workers: spec.GCWorkers, LeaseTTL: spec.GCLease,
		KeepLast: spec.GCKeepLast, KeepDays: spec.GCKeepDays}
	o.Log = slog.New(slog.NewTextHandler(os.Stderr, nil)) // the phases, for the benchmarks' output
	s, err := nixcache.GC(context.Background(), o)
	fmt.Println("GCSUMMARY " + s.JSON())
	if err != nil {
		fmt.Fprintln(os.Stderr, "child gc:", err)
		return 1
	}
	return 0
}

func runChildVerify(o nixcache.Options, spec childSpec) int {
	o.PubKey = spec.PubKey
	var rep nixcache.Report
	var err error
	if spec.Incremental {
		rep, err = nixcache.VerifyIncremental(context.Background(), o)
	} else {
		rep, err = nixcache.Verify(context.Background(), o, spec.Deep)
	}
	b, _ := json.Marshal(rep) // numbers and strings always marshal
	fmt.Println("REPORT " + string(b))
	var ve *nixcache.VerifyError
	switch {
	case errors.As(err, &ve):
		return 1
	case err != nil:
		fmt.Fprintln(os.Stderr, "child verify:", err)
		return 4
	}
	return 0
}

// childPush returns the command that re-executes this test binary as a
// push process for spec.
func childPush(t testing.TB, spec childSpec, env ...string) *exec.Cmd {
	t.Helper()
	raw, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childEnv+"="+string(raw)), env...)
	cmd.WaitDelay = 5 * time.Second // a killed child's nix grandchild may hold its pipes
	return cmd
}

// testTimeout bounds every push, audit and Nix command a test runs, so a
// stall fails the test with the operation named instead of hanging it.
const testTimeout = 2 * time.Minute

// tctx is the context of one test's operations: cancelled at the end of
// the test or after testTimeout.
func tctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}
