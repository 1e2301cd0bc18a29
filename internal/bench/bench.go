// Package bench measures signing and verifying a large artifact three ways
// on the same machine: the old shell flow (sha256sum three times and
// `minisign -S`; `minisign -V` and sha256sum to verify), b2sum alone (the
// floor: minisign's prehash must read every byte through BLAKE2b-512), and
// ours (`mage sign` without an SBOM, and `mage verify`). A fourth flow is
// our BLAKE2b-512 alone (golang.org/x/crypto's, in a process of its own
// like b2sum): the floor of our own hash, which shows how much of a gap to
// b2sum is the hash's and how much the rest. Each flow runs
// under /usr/bin/time as a child process, which gives its wall time and
// peak RSS, several times in interleaved rounds (every flow once per
// round), so that a change of load on a shared machine hits every flow
// alike; a flow's ratio to b2sum is taken within each round, and the
// report gives the median and the spread (min–max) of the rounds. A pass
// runs quiet, or loaded: with BusyCores threads of the harness spinning
// through the rounds, as another job on a shared machine would.
package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/socioprophet/sourceos/internal/catalog"
	"github.com/socioprophet/sourceos/internal/digest"
	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/signature"
)

// DefaultSize is the artifact size measured: 1 GiB, an installer image.
const DefaultSize = 1 << 30

// DefaultRuns is how many rounds a benchmark runs.
const DefaultRuns = 5

// Options configure a benchmark run.
type Options struct {
	// Dir is a scratch directory; the artifact and keys are made there.
	Dir string
	// Size of the artifact in bytes (DefaultSize when 0).
	Size int64
	// Runs is the number of rounds (DefaultRuns when 0).
	Runs int
	// SignBench is the compiled signbench binary (our sign and verify).
	SignBench string
	// BusyCores is how many threads spin while the rounds run (0: a
	// quiet pass).
	BusyCores int
	// OursOnly leaves out the old shell flows (b2sum and ours only).
	OursOnly bool
	Run      execx.Runner
	// Progress receives a line per step (discarded when nil).
	Progress io.Writer
}

// Measurement is one flow's outcome over every round.
type Measurement struct {
	Name string `json:"name"`
	// Seconds are the wall times of the rounds, in order.
	Seconds []float64 `json:"seconds"`
	// Ratios are Seconds divided by b2sum's in the same round.
	Ratios []float64 `json:"ratiosToB2sum"`
	// CPUSeconds is user + system time of the flow and its children, per
	// round.
	CPUSeconds []float64 `json:"cpuSeconds"`
	// MaxRSSKiB is the largest peak RSS of any round.
	MaxRSSKiB int64 `json:"maxRssKiB"`
}

// Spread is a median with the smallest and largest value.
type Spread struct{ Median, Min, Max float64 }

func spreadOf(xs []float64) Spread {
	if len(xs) == 0 {
		return Spread{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Spread{Median: m, Min: s[0], Max: s[len(s)-1]}
}

// Time is the spread of the wall times.
func (m Measurement) Time() Spread { return spreadOf(m.Seconds) }

// Ratio is the spread of the per-round ratios to b2sum.
func (m Measurement) Ratio() Spread { return spreadOf(m.Ratios) }

// CPU is the spread of the CPU times.
func (m Measurement) CPU() Spread { return spreadOf(m.CPUSeconds) }

// Report is the outcome of a run.
type Report struct {
	Bytes int64 `json:"bytes"`
	Runs  int   `json:"runs"`
	// LoadBefore and LoadAfter are /proc/loadavg's 1, 5 and 15 minute
	// load averages when the run started and ended ("" where unknown).
	LoadBefore string `json:"loadBefore,omitempty"`
	LoadAfter  string `json:"loadAfter,omitempty"`
	CPUs       int    `json:"cpus"`
	BusyCores  int    `json:"busyCores"`
	// CPU is the processor's model name; BLAKE2b the code x/crypto's
	// BLAKE2b runs on it (BLAKE2bPath).
	CPU          string        `json:"cpu,omitempty"`
	BLAKE2b      string        `json:"blake2b"`
	Measurements []Measurement `json:"measurements"`
}

// Flow names.
const (
	FlowB2sum     = "b2sum (floor)"
	FlowOurHash   = "ours: BLAKE2b-512 alone (x/crypto)"
	FlowOldSign   = "old sign: sha256sum x3 + minisign -S"
	FlowOurSign   = "ours: mage sign (no SBOM)"
	FlowOldVerify = "old verify: minisign -V + sha256sum"
	FlowOurVerify = "ours: mage verify"
)

// Run makes the artifact and a throwaway key, then measures one pass.
func Run(ctx context.Context, o Options) (*Report, error) {
	b, err := Prepare(o)
	if err != nil {
		return nil, err
	}
	return b.Measure(ctx, o.BusyCores, o.OursOnly)
}

// Bench is a prepared benchmark: the artifact and the key, ready for one
// pass or more.
type Bench struct{ s *state }

// Prepare writes the artifact and makes a throwaway key in o.Dir.
func Prepare(o Options) (*Bench, error) {
	if o.Size == 0 {
		o.Size = DefaultSize
	}
	if o.Runs == 0 {
		o.Runs = DefaultRuns
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	s, err := setup(o)
	if err != nil {
		return nil, err
	}
	return &Bench{s: s}, nil
}

// Measure times every flow in each round (after a warm-up that puts the
// artifact in the page cache), with busy threads spinning meanwhile;
// oursOnly leaves the old shell flows out.
func (b *Bench) Measure(ctx context.Context, busy int, oursOnly bool) (*Report, error) {
	s, o := b.s, b.s.o
	flows := s.flows()
	if _, err := s.measure(ctx, flows[0]); err != nil {
		return nil, fmt.Errorf("%s: %w", flows[0].name, err)
	}
	flows = flows[1:]
	if oursOnly {
		flows = slices.DeleteFunc(flows, func(f flow) bool { return f.name == FlowOldSign || f.name == FlowOldVerify })
	}
	rep := &Report{Bytes: o.Size, Runs: o.Runs, CPUs: runtime.NumCPU(), BusyCores: busy, CPU: cpuModel(), BLAKE2b: BLAKE2bPath()}
	for _, f := range flows {
		rep.Measurements = append(rep.Measurements, Measurement{Name: f.name})
	}
	stop := spin(busy)
	defer stop()
	rep.LoadBefore = loadAverage()
	for round := 1; round <= o.Runs; round++ {
		for i, f := range flows {
			fmt.Fprintf(o.Progress, "bench: round %d/%d (%d busy): %s\n", round, o.Runs, busy, f.name)
			t, err := s.measure(ctx, f)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.name, err)
			}
			m := &rep.Measurements[i]
			m.Seconds = append(m.Seconds, t.Wall)
			m.CPUSeconds = append(m.CPUSeconds, t.User+t.System)
			m.MaxRSSKiB = max(m.MaxRSSKiB, t.MaxRSSKiB)
		}
	}
	rep.LoadAfter = loadAverage()
	rep.ratios()
	return rep, nil
}

// spin keeps n threads busy until the returned function is called.
func spin(n int) func() {
	var done atomic.Bool
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			for x := uint64(1); !done.Load(); x = x*6364136223846793005 + 1 {
			}
		})
	}
	return func() { done.Store(true); wg.Wait() }
}

// loadAverage is the first three fields of /proc/loadavg, or "".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// state is what the flows share.
type state struct {
	o        Options
	artifact string
	want     digest.Digests
	key      *signature.KeyPair
	keyFile  string
	pubFile  string
}

func setup(o Options) (*state, error) {
	artifact := filepath.Join(o.Dir, "sourceos-bench-x86_64.iso")
	fmt.Fprintf(o.Progress, "bench: writing %d incompressible bytes to %s\n", o.Size, artifact)
	want, err := makeArtifact(artifact, o.Size)
	if err != nil {
		return nil, err
	}
	// A throwaway key made for this run: the old flow's minisign reads it
	// from a file, ours from the environment, as configured in production.
	kp, err := signature.Generate(signature.GenerateOptions{})
	if err != nil {
		return nil, err
	}
	s := &state{o: o, artifact: artifact, want: want, key: kp,
		keyFile: filepath.Join(o.Dir, "bench.key"), pubFile: filepath.Join(o.Dir, "bench.pub")}
	if err := signature.WriteSecretKey(s.keyFile, kp.SecretKey); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(o.Dir, catalog.FileName), []byte(benchCatalog), 0o644); err != nil {
		return nil, err
	}
	return s, os.WriteFile(s.pubFile, kp.PublicKey, 0o644)
}

// benchCatalog names the benchmark's artifact, for `mage sign`'s
// provenance: the catalog of the directory it runs in.
const benchCatalog = `{
  "editions": {"bench": {"description": "benchmark", "module": "bench", "hostProfile": "vm-base",
    "hostname": "bench", "capabilities": ["nix-store"]}},
  "artifacts": {"iso": {"kind": "iso", "description": "benchmark image", "attribute": "packages.{system}.sourceos-{edition}-iso",
    "file": "sourceos-{edition}-{arch}.iso", "editions": ["bench"], "arches": ["x86_64"], "channels": []}}
}
`

// makeArtifact writes size pseudo-random (incompressible) bytes and returns
// their digests, against which each flow's result is checked.
func makeArtifact(path string, size int64) (digest.Digests, error) {
	f, err := os.Create(path)
	if err != nil {
		return digest.Digests{}, err
	}
	src := io.LimitReader(rand.NewChaCha8([32]byte{'s', 'o', 'u', 'r', 'c', 'e', 'o', 's'}), size)
	d, n, err := digest.Copy(f, src)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != size {
		err = fmt.Errorf("wrote %d bytes, want %d", n, size)
	}
	return d, err
}

// flow is one timed shell command line plus a check of what it produced.
type flow struct {
	name   string
	script string
	env    []string
	check  func(stdout string) error
}

func (s *state) flows() []flow {
	a, q := s.artifact, shellQuote
	ours := []string{"SOURCEOS_SIGN_SECRET_KEY=" + string(s.key.SecretKey), "SOURCEOS_SIGN_PUBKEY=" + s.key.Public.String(),
		"TARGET=iso", "EDITION=bench", "ARCH=x86_64", "VERSION=0.0.0-bench", "BUILD_ID=bench", "OUT=" + s.o.Dir, "STORE_PATHS="}
	return []flow{
		// Warm the page cache so every flow reads from memory (first:
		// run once, not measured).
		{name: "warm-up", script: "cat " + q(a) + " >/dev/null", check: noCheck},
		{name: FlowB2sum, script: "b2sum " + q(a), check: s.expectHex(s.want.BLAKE2b512Hex())},
		{name: FlowOurHash, script: q(s.o.SignBench) + " blake2b " + q(a), check: s.expectHex(s.want.BLAKE2b512Hex())},
		{name: FlowOldSign, script: fmt.Sprintf("sha256sum %[1]s >%[1]s.sha256 && sha256sum %[1]s >/dev/null && sha256sum %[1]s >/dev/null && minisign -S -W -s %[2]s -m %[1]s >/dev/null && cat %[1]s.sha256", q(a), q(s.keyFile)),
			check: s.expectHex(s.want.SHA256Hex())},
		{name: FlowOldVerify, script: fmt.Sprintf("minisign -V -q -p %[2]s -m %[1]s && sha256sum -c --status %[1]s.sha256 && echo verified", q(a), q(s.pubFile)),
			check: expect("verified")},
		// Ours must have read every byte: the checksum it wrote is the
		// one computed while writing the artifact, and its minisig
		// verifies with the real minisign (which hashes the file itself).
		{name: FlowOurSign, script: q(s.o.SignBench) + " sign " + q(a) + " >/dev/null && cat " + q(a) + ".sha256", env: ours,
			check: s.expectHex(s.want.SHA256Hex())},
		{name: FlowOurVerify, script: q(s.o.SignBench) + " verify " + q(a), env: ours,
			check: expect("(sha256 "+s.want.SHA256Hex()+", key "+s.key.Public.ID.String()+")\n", "\nOK\n")},
	}
}

func noCheck(string) error { return nil }

// expectHex checks the flow printed the digest computed while writing the
// artifact: it really read every byte.
func (s *state) expectHex(hex string) func(string) error {
	return func(out string) error {
		if !strings.HasPrefix(out, hex+" ") {
			return fmt.Errorf("printed %.80q, want the digest %s", out, hex)
		}
		return nil
	}
}

// expect checks the flow printed every one of subs.
func expect(subs ...string) func(string) error {
	return func(out string) error {
		for _, sub := range subs {
			if !strings.Contains(out, sub) {
				return fmt.Errorf("output %.200q lacks %q", out, sub)
			}
		}
		return nil
	}
}

// timeFormat makes /usr/bin/time print wall seconds, max RSS (KiB), user
// and system seconds.
const timeFormat = "BENCH %e %M %U %S"

// measure runs a flow once under /usr/bin/time and checks what it printed.
func (s *state) measure(ctx context.Context, f flow) (Timing, error) {
	res, err := s.o.Run.Run(ctx, execx.Cmd{
		Name: "/usr/bin/time", Args: []string{"-f", timeFormat, "sh", "-c", f.script},
		Dir: s.o.Dir, Env: f.env, PassSecrets: []string{"SOURCEOS_SIGN_SECRET_KEY"},
	})
	if err != nil {
		return Timing{}, err
	}
	if err := f.check(string(res.Stdout)); err != nil {
		return Timing{}, err
	}
	return ParseTime(string(res.Stderr))
}

// Timing is what /usr/bin/time reported.
type Timing struct {
	Wall, User, System float64
	MaxRSSKiB          int64
}

// ParseTime reads the "BENCH <wall> <KiB> <user> <sys>" line /usr/bin/time
// printed.
func ParseTime(stderr string) (Timing, error) {
	sc := bufio.NewScanner(strings.NewReader(stderr))
	var t Timing
	found := false
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 5 || f[0] != "BENCH" {
			continue
		}
		var errs [4]error
		t.Wall, errs[0] = strconv.ParseFloat(f[1], 64)
		t.MaxRSSKiB, errs[1] = strconv.ParseInt(f[2], 10, 64)
		t.User, errs[2] = strconv.ParseFloat(f[3], 64)
		t.System, errs[3] = strconv.ParseFloat(f[4], 64)
		found = errors.Join(errs[:]...) == nil
	}
	if !found {
		return Timing{}, errors.New("no timing line from /usr/bin/time")
	}
	return t, nil
}

// ratios fills in each flow's per-round time relative to b2sum's.
func (r *Report) ratios() {
	floor, ok := r.Get(FlowB2sum)
	if !ok {
		return
	}
	for i := range r.Measurements {
		m := &r.Measurements[i]
		m.Ratios = make([]float64, len(m.Seconds))
		for j, sec := range m.Seconds {
			if j < len(floor.Seconds) && floor.Seconds[j] > 0 {
				m.Ratios[j] = sec / floor.Seconds[j]
			}
		}
	}
}

// Pass says how loaded the pass was.
func (r *Report) Pass() string {
	if r.BusyCores == 0 {
		return "quiet (no busy thread of the harness)"
	}
	return fmt.Sprintf("loaded (%d busy thread(s) of the harness)", r.BusyCores)
}

// Get returns the measurement of a flow.
func (r *Report) Get(name string) (Measurement, bool) {
	for _, m := range r.Measurements {
		if m.Name == name {
			return m, true
		}
	}
	return Measurement{}, false
}

// WriteText prints the results as a Markdown table.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Artifact: %d bytes (%.2f GiB), page cache warm, %d rounds, %d CPUs (%s; x/crypto's BLAKE2b runs its %s code), %s; load average %s before, %s after.\n\n",
		r.Bytes, float64(r.Bytes)/(1<<30), r.Runs, r.CPUs, orUnknown(r.CPU), r.BLAKE2b, r.Pass(), orUnknown(r.LoadBefore), orUnknown(r.LoadAfter))
	b.WriteString("| flow | seconds, median (min–max) | × b2sum, median (min–max) | CPU seconds (median) | peak RSS (MiB) |\n|---|---:|---:|---:|---:|\n")
	for _, m := range r.Measurements {
		t, x := m.Time(), m.Ratio()
		fmt.Fprintf(&b, "| %s | %.2f (%.2f–%.2f) | %.2f (%.2f–%.2f) | %.2f | %.1f |\n",
			m.Name, t.Median, t.Min, t.Max, x.Median, x.Min, x.Max, m.CPU().Median, float64(m.MaxRSSKiB)/1024)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
