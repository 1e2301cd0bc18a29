// Package bench measures signing and verifying a large artifact three ways
// on the same machine, one run each: the old shell flow (sha256sum three
// times and `minisign -S`; `minisign -V` and sha256sum to verify), b2sum
// alone (the floor: minisign's prehash must read every byte through
// BLAKE2b-512), and ours (`mage sign` without an SBOM, and `mage verify`).
// Each flow runs under /usr/bin/time as a child process, which gives its wall
// time and peak RSS.
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
	"strconv"
	"strings"
	"time"

	"github.com/socioprophet/sourceos/internal/digest"
	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/sign"
)

// DefaultSize is the artifact size the issue asks for: 2 GB.
const DefaultSize = 2 << 30

// Options configure a benchmark run.
type Options struct {
	// Dir is a scratch directory; the artifact and keys are made there.
	Dir string
	// Size of the artifact in bytes (DefaultSize when 0).
	Size int64
	// SignBench is the compiled signbench binary (our sign and verify).
	SignBench string
	Run       execx.Runner
	// Progress receives a line per step (discarded when nil).
	Progress io.Writer
}

// Measurement is one flow's outcome.
type Measurement struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
	Ratio   float64 `json:"ratioToB2sum"`
	// CPUSeconds is user + system time of the flow and its children.
	CPUSeconds float64 `json:"cpuSeconds"`
	MaxRSSKiB  int64   `json:"maxRssKiB"`
}

// Report is the outcome of a run.
type Report struct {
	Bytes        int64         `json:"bytes"`
	Measurements []Measurement `json:"measurements"`
}

// Flow names.
const (
	FlowB2sum     = "b2sum (floor)"
	FlowOldSign   = "old sign: sha256sum x3 + minisign -S"
	FlowOurSign   = "ours: mage sign (no SBOM)"
	FlowOldVerify = "old verify: minisign -V + sha256sum"
	FlowOurVerify = "ours: mage verify"
)

// Run makes the artifact and a throwaway key, then times every flow.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Size == 0 {
		o.Size = DefaultSize
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	s, err := setup(o)
	if err != nil {
		return nil, err
	}
	rep := &Report{Bytes: o.Size}
	for _, f := range s.flows() {
		fmt.Fprintf(o.Progress, "bench: %s\n", f.name)
		m, err := s.measure(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		rep.Measurements = append(rep.Measurements, m)
	}
	rep.ratios()
	return rep, nil
}

// state is what the flows share.
type state struct {
	o        Options
	artifact string
	want     digest.Digests
	key      *sign.KeyPair
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
	kp, err := sign.Generate(sign.GenerateOptions{})
	if err != nil {
		return nil, err
	}
	s := &state{o: o, artifact: artifact, want: want, key: kp,
		keyFile: filepath.Join(o.Dir, "bench.key"), pubFile: filepath.Join(o.Dir, "bench.pub")}
	if err := sign.WriteSecretKey(s.keyFile, kp.SecretKey); err != nil {
		return nil, err
	}
	return s, os.WriteFile(s.pubFile, kp.PublicKey, 0o644)
}

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
		"TARGET=iso", "EDITION=desktop", "ARCH=x86_64", "VERSION=0.0.0-bench", "BUILD_ID=bench", "OUT=" + s.o.Dir}
	return []flow{
		// Warm the page cache so every flow reads from memory.
		{name: "warm-up", script: "cat " + q(a) + " >/dev/null", check: noCheck},
		{name: FlowB2sum, script: "b2sum " + q(a), check: s.expectHex(s.want.BLAKE2b512Hex())},
		{name: FlowOldSign, script: fmt.Sprintf("sha256sum %[1]s >%[1]s.sha256 && sha256sum %[1]s >/dev/null && sha256sum %[1]s >/dev/null && minisign -S -W -s %[2]s -m %[1]s >/dev/null && cat %[1]s.sha256", q(a), q(s.keyFile)),
			check: s.expectHex(s.want.SHA256Hex())},
		{name: FlowOldVerify, script: fmt.Sprintf("minisign -V -q -p %[2]s -m %[1]s && sha256sum -c --status %[1]s.sha256 && echo verified", q(a), q(s.pubFile)),
			check: expect("verified")},
		{name: FlowOurSign, script: q(s.o.SignBench) + " sign " + q(a) + " >/dev/null && cat " + q(a) + ".sha256", env: ours,
			check: s.expectHex(s.want.SHA256Hex())},
		{name: FlowOurVerify, script: q(s.o.SignBench) + " verify " + q(a), env: ours, check: expect("\nOK\n")},
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

func expect(sub string) func(string) error {
	return func(out string) error {
		if !strings.Contains(out, sub) {
			return fmt.Errorf("output %.200q lacks %q", out, sub)
		}
		return nil
	}
}

// timeFormat makes /usr/bin/time print wall seconds, max RSS (KiB), user
// and system seconds.
const timeFormat = "BENCH %e %M %U %S"

func (s *state) measure(ctx context.Context, f flow) (Measurement, error) {
	start := time.Now()
	res, err := s.o.Run.Run(ctx, execx.Cmd{
		Name: "/usr/bin/time", Args: []string{"-f", timeFormat, "sh", "-c", f.script},
		Dir: s.o.Dir, Env: f.env, PassSecrets: []string{"SOURCEOS_SIGN_SECRET_KEY"},
	})
	wall := time.Since(start).Seconds()
	if err != nil {
		return Measurement{}, err
	}
	if err := f.check(string(res.Stdout)); err != nil {
		return Measurement{}, err
	}
	t, err := ParseTime(string(res.Stderr))
	if err != nil {
		return Measurement{}, err
	}
	return Measurement{Name: f.name, Seconds: wall, CPUSeconds: t.User + t.System, MaxRSSKiB: t.MaxRSSKiB}, nil
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

// ratios fills in each flow's time relative to b2sum and drops the warm-up.
func (r *Report) ratios() {
	var floor float64
	kept := r.Measurements[:0]
	for _, m := range r.Measurements {
		if m.Name == FlowB2sum {
			floor = m.Seconds
		}
		if m.Name != "warm-up" {
			kept = append(kept, m)
		}
	}
	r.Measurements = kept
	for i := range r.Measurements {
		if floor > 0 {
			r.Measurements[i].Ratio = r.Measurements[i].Seconds / floor
		}
	}
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
	fmt.Fprintf(&b, "Artifact: %d bytes (%.2f GiB), page cache warm, one run each.\n\n", r.Bytes, float64(r.Bytes)/(1<<30))
	b.WriteString("| flow | seconds | × b2sum | CPU seconds | peak RSS (MiB) |\n|---|---:|---:|---:|---:|\n")
	for _, m := range r.Measurements {
		fmt.Fprintf(&b, "| %s | %.2f | %.2f | %.2f | %.1f |\n", m.Name, m.Seconds, m.Ratio, m.CPUSeconds, float64(m.MaxRSSKiB)/1024)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
