// Package watch pushes store paths while Nix builds them: a post-build
// hook queues what Nix built, and a push session publishes it.
package watch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nix-community/go-nix/pkg/derivation"

	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/nixcache/push"
	"github.com/socioprophet/sourceos/internal/nixstore"
)

// A Watcher pushes store paths while Nix builds them, as magic-nix-cache,
// cachix watch-exec and attic watch-store do. Nix runs a post-build hook
// synchronously after each derivation it builds, blocking the build while
// it runs, so the hook must be quick and must not hold
// anything worth stealing: ours is a few lines of shell that append
// $OUT_PATHS to a spool file and exit 0. It runs as the Nix daemon's user
// (root, on a multi-user install) or as the user running Nix, reads no
// environment variable but OUT_PATHS, and neither it nor its file holds
// a secret; the key stays in this process, which tails the spool and
// pushes through a bounded queue: the hook never waits for us.
//
// Nix honours `--option post-build-hook` only from a trusted user when a
// daemon builds (see HookSupport). Where the hook cannot be installed the
// watcher says so once and the caller pushes the closure at the end.
type Watcher struct {
	s    *push.Session
	run  push.Options
	dir  string
	hook string
	path string // the spool file

	batches chan []string
	stop    chan struct{}
	tailed  chan struct{}
	pushed  chan struct{}

	spool   spoolReader // read by the tail goroutine only
	mu      sync.Mutex
	seen    map[string]bool // spool lines read
	outSeen map[string]bool // built paths
	built   []string
	errs    []error
}

// Options tune a watcher.
type Options struct {
	// ChainHook is an existing post-build hook (from nix.conf) to run
	// after ours, so that installing ours does not disable it.
	ChainHook string
	// Poll is how often the spool is read (default 100ms).
	Poll time.Duration
	// Queue bounds the batches of built paths waiting to be pushed
	// (default 64); when it is full the watcher stops reading the spool,
	// which keeps growing on disk: Nix is never held up.
	Queue int
}

// StartWatch opens a push session and writes the hook and its spool into
// a new private directory.
func Start(ctx context.Context, o push.Options, wo Options) (*Watcher, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Runner == nil {
		return nil, errors.New("cache watch: no command runner")
	}
	if wo.Poll <= 0 {
		wo.Poll = 100 * time.Millisecond
	}
	if wo.Queue <= 0 {
		wo.Queue = 64
	}
	s, err := push.Open(ctx, o)
	if err != nil {
		return nil, err
	}
	w := &Watcher{s: s, run: o, batches: make(chan []string, wo.Queue), stop: make(chan struct{}),
		tailed: make(chan struct{}), pushed: make(chan struct{}), seen: map[string]bool{}, outSeen: map[string]bool{}}
	if err := w.writeHook(wo.ChainHook); err != nil {
		s.Abandon()
		return nil, err
	}
	go w.tail(wo.Poll)
	go w.push(ctx)
	return w, nil
}

// Hook is the path of the post-build hook script.
func (w *Watcher) Hook() string { return w.hook }

// NixArgs are the arguments that make a nix command run the hook.
func (w *Watcher) NixArgs() []string { return []string{"--option", "post-build-hook", w.hook} }

// Session is the push session the watcher feeds (to add the closure of
// what was built once the build is done).
func (w *Watcher) Session() *push.Session { return w.s }

// Spool is the file the hook appends to.
func (w *Watcher) Spool() string { return w.path }

// hookScript is the post-build hook: it appends the derivation and each
// output path to the spool, one per line, and always exits 0 (a failing
// hook would stop Nix from building anything more). chain, when set, is
// run after it. The derivation is there because some Nix releases (2.8
// among them) run the hook with an empty OUT_PATHS; its outputs are then
// asked of the store.
func hookScript(spool, chain string) string {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	b.WriteString("# Post-build hook of a SourceOS build: queues the paths Nix just built\n")
	b.WriteString("# for the cache push running in the build's process. It reads nothing\n")
	b.WriteString("# but DRV_PATH and OUT_PATHS and holds no secret.\n")
	b.WriteString("set -f\n")
	fmt.Fprintf(&b, "for p in \"$DRV_PATH\" $OUT_PATHS; do printf '%%s\\n' \"$p\"; done >> %s 2>/dev/null\n", shellQuote(spool))
	if chain != "" {
		fmt.Fprintf(&b, "exec %s\n", shellQuote(chain))
	}
	b.WriteString("exit 0\n")
	return b.String()
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func (w *Watcher) writeHook(chain string) error {
	if chain != "" && (!filepath.IsAbs(chain) || strings.ContainsAny(chain, "\n\r\x00")) {
		return fmt.Errorf("cache watch: existing post-build-hook %q is not an absolute path", chain)
	}
	dir, err := os.MkdirTemp("", "sourceos-cache-watch-")
	if err != nil {
		return fmt.Errorf("cache watch: %w", err)
	}
	w.dir = dir
	w.path = filepath.Join(dir, "built")
	w.hook = filepath.Join(dir, "post-build-hook")
	if err := os.WriteFile(w.path, nil, 0o600); err != nil {
		return fmt.Errorf("cache watch: %w", err)
	}
	if err := os.WriteFile(w.hook, []byte(hookScript(w.path, chain)), 0o700); err != nil {
		return fmt.Errorf("cache watch: %w", err)
	}
	return nil
}

// tail reads new lines of the spool every poll until stop, then once
// more, and hands them to the queue.
func (w *Watcher) tail(poll time.Duration) {
	defer close(w.tailed)
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			w.readSpool()
			close(w.batches)
			return
		case <-t.C:
			w.readSpool()
		}
	}
}

// readSpool reads what was appended to the spool since the last read, a
// chunk at a time, and queues the new store paths on its complete lines.
// A line longer than any store path is skipped and counted (logged the
// first time), never waited on.
func (w *Watcher) readSpool() {
	f, err := os.Open(w.path)
	if err != nil {
		w.fail(err)
		return
	}
	defer f.Close()
	for {
		from := w.spool.offset
		n, err := w.readChunk(f)
		if err != nil {
			w.fail(err)
			return
		}
		if n < spoolChunk || w.spool.offset == from {
			return
		}
	}
}

// readChunk reads at most spoolChunk bytes of the spool from where the
// last read stopped and queues the new store paths on its complete lines;
// it returns how many bytes it read.
func (w *Watcher) readChunk(f *os.File) (int, error) {
	data, err := io.ReadAll(io.NewSectionReader(f, w.spool.offset, spoolChunk))
	if err != nil {
		return 0, err
	}
	before := w.spool.overlong.Load()
	paths := w.spool.parse(data)
	if before == 0 && w.spool.overlong.Load() > 0 {
		w.run.Log.Warn("cache watch: skipped a spool line longer than any store path; later ones are only counted",
			"spool", w.path, "limit_bytes", maxSpoolLine)
	}
	var fresh []string
	w.mu.Lock()
	for _, p := range paths {
		if !w.seen[p] {
			w.seen[p] = true
			fresh = append(fresh, p)
		}
	}
	w.mu.Unlock()
	if len(fresh) > 0 {
		w.batches <- fresh // blocks while the queue is full
	}
	return len(data), nil
}

const (
	// maxSpoolLine bounds a spool line: a store path is a few hundred
	// bytes at most (Nix allows names of 211 characters), so a longer
	// line is none, whatever wrote it.
	maxSpoolLine = 4096
	// spoolChunk bounds one read of the spool.
	spoolChunk = 4 << 20
)

// spoolReader follows the spool: where the next read starts and whether
// it is inside an over-long line.
type spoolReader struct {
	offset int64
	// skipping: an over-long line was seen whose newline is not read yet.
	skipping bool
	// overlong counts the over-long lines skipped.
	overlong atomic.Int64
}

// parse consumes data, read from the spool at offset: it returns the
// valid store paths on its complete lines (anything else on a line is
// ignored) and moves offset past them. A line longer than maxSpoolLine is
// skipped up to and including its newline, and counted once, even before
// its newline is written: waiting for it would stall the spool, as the
// reader never takes more than spoolChunk at once. An incomplete line of
// a valid length is left for the next read.
func (r *spoolReader) parse(data []byte) (paths []string) {
	used := 0
	for used < len(data) {
		rest := data[used:]
		i := bytes.IndexByte(rest, '\n')
		switch {
		case r.skipping && i < 0:
			used = len(data)
		case r.skipping:
			used += i + 1
			r.skipping = false
		case i < 0 && len(rest) > maxSpoolLine:
			r.overlong.Add(1)
			r.skipping = true
			used = len(data)
		case i < 0:
			r.offset += int64(used)
			return paths
		case i > maxSpoolLine:
			r.overlong.Add(1)
			used += i + 1
		default:
			if line := strings.TrimSpace(string(rest[:i])); nixstore.ValidatePath(line) == nil {
				paths = append(paths, line)
			}
			used += i + 1
		}
	}
	r.offset += int64(used)
	return paths
}

// queryInterval is the least time between two closure queries while Nix
// builds: each is a nix process, whose start costs the build about as
// much CPU as a small derivation; paths built meanwhile wait and go
// together.
var queryInterval = time.Second

// push takes batches off the queue (every batch waiting at once), asks
// Nix for their closure and adds it to the session.
func (w *Watcher) push(ctx context.Context) {
	defer close(w.pushed)
	var last time.Time
	for batch := range w.batches {
		if wait := queryInterval - time.Since(last); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-w.stop: // draining: no more waiting
			}
			t.Stop()
		}
		last = time.Now()
		more := true
		for more {
			select {
			case b, ok := <-w.batches:
				if !ok {
					more = false
					break
				}
				batch = append(batch, b...)
			default:
				more = false
			}
		}
		paths, err := w.outputs(ctx, batch)
		if err != nil {
			w.fail(err)
			continue
		}
		w.mu.Lock()
		for _, p := range paths {
			if !w.outSeen[p] {
				w.outSeen[p] = true
				w.built = append(w.built, p)
			}
		}
		w.mu.Unlock()
		infos, err := nixstore.Query(ctx, w.run.Runner, paths...)
		if err != nil {
			w.fail(fmt.Errorf("cache watch: %w", err))
			continue
		}
		w.s.Add(ctx, infos)
	}
}

// outputs replaces the derivations of batch by their outputs: read from
// the derivation, or asked of the store for one whose outputs are not
// fixed in it (content-addressed).
func (w *Watcher) outputs(ctx context.Context, batch []string) ([]string, error) {
	var drvs, paths []string
	for _, p := range batch {
		if !strings.HasSuffix(p, ".drv") {
			paths = append(paths, p)
			continue
		}
		outs, err := drvOutputs(p)
		if err != nil || len(outs) == 0 {
			drvs = append(drvs, p)
			continue
		}
		paths = append(paths, outs...)
	}
	if len(drvs) == 0 {
		return paths, nil
	}
	res, err := w.run.Runner.Run(ctx, execx.Cmd{Name: "nix-store", Args: OutputsArgs(drvs...)})
	if err != nil {
		return nil, fmt.Errorf("cache watch: outputs of %d derivations: %w", len(drvs), err)
	}
	seen := map[string]bool{}
	for _, p := range paths {
		seen[p] = true
	}
	for _, p := range strings.Fields(string(res.Stdout)) {
		if !seen[p] && nixstore.ValidatePath(p) == nil {
			seen[p] = true
			paths = append(paths, p)
		}
	}
	return paths, nil
}

// maxDrvSize bounds the bytes read of a derivation.
const maxDrvSize = 16 << 20

// drvOutputs reads the output paths a derivation fixes; none when one of
// them is not fixed (a content-addressed derivation).
func drvOutputs(drvPath string) ([]string, error) {
	f, err := os.Open(drvPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	drv, err := derivation.ReadDerivation(io.LimitReader(f, maxDrvSize))
	if err != nil {
		return nil, err
	}
	var outs []string
	for _, o := range drv.Outputs {
		if nixstore.ValidatePath(o.Path) != nil {
			return nil, nil
		}
		outs = append(outs, o.Path)
	}
	sort.Strings(outs)
	return outs, nil
}

// OutputsArgs is the argv (after "nix-store") that prints the output
// paths of derivations.
func OutputsArgs(drvs ...string) []string { return append([]string{"--query", "--outputs"}, drvs...) }

func (w *Watcher) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.errs) == 0 {
		w.run.Log.Warn("cache watch: a built path could not be queued", "err", err)
	}
	w.errs = append(w.errs, err)
}

// Built returns the paths Nix built, as the hook reported them.
func (w *Watcher) Built() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.built...)
}

// Drain stops watching (call it once Nix has exited: the hook runs
// before the build command returns), pushes what the spool still holds
// and waits until every path reported so far is published or failed.
func (w *Watcher) Drain(ctx context.Context) error {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	for _, ch := range []chan struct{}{w.tailed, w.pushed} {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := w.s.Wait(ctx); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	errs := w.errs
	if n := w.spool.overlong.Load(); n > 0 {
		errs = append(errs, fmt.Errorf("cache watch: %w: %d skipped (the paths on other lines were pushed)", ErrSpoolLine, n))
	}
	return errors.Join(errs...)
}

// ErrSpoolLine means the spool held lines longer than any store path,
// which the watcher skipped: something other than the hook wrote to it.
var ErrSpoolLine = fmt.Errorf("spool lines longer than %d bytes", maxSpoolLine)

// Close drains the watcher, closes the session with a root naming tops
// (default: the built paths nothing else built refers to) and removes the
// hook.
func (w *Watcher) Close(ctx context.Context, tops []string) (push.Summary, error) {
	derr := w.Drain(ctx)
	if tops == nil {
		tops = w.topsOfBuilt()
	}
	sum, err := w.s.Close(ctx, tops)
	sum.SpoolErrors = int(w.spool.overlong.Load())
	w.Remove()
	return sum, errors.Join(derr, err)
}

// Finish drains the watcher and ends the session without a root (a
// failed build: what it built stays for the grace period), then removes
// the hook.
func (w *Watcher) Finish(ctx context.Context) (push.Summary, error) {
	derr := w.Drain(ctx)
	sum, err := w.s.Finish(ctx)
	sum.SpoolErrors = int(w.spool.overlong.Load())
	w.Remove()
	return sum, errors.Join(derr, err)
}

// Remove deletes the hook and its spool, ending the session if it is
// still open.
func (w *Watcher) Remove() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	w.s.Abandon()
	_ = os.RemoveAll(w.dir)
}

// topsOfBuilt is the built paths that no other session path refers to.
func (w *Watcher) topsOfBuilt() []string {
	built := map[string]bool{}
	for _, p := range w.Built() {
		built[p] = true
	}
	var out []string
	for _, p := range push.Maximal(w.s.Infos()) {
		if built[p] {
			out = append(out, p)
		}
	}
	return out
}
