package image

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/nixcache"
)

// An edition build pushes each path to the Nix cache as soon as Nix has
// built it (nixcache.Watcher): the first nix build step installs the
// watcher, every nix build step runs with its post-build hook, and the
// cache step only waits for the queue to drain and pushes the rest of the
// closure (paths substituted or already in the store). A failed nix build
// still drains what it built. Custom builds never push (they hold no
// key); neither does a build with NIX_CACHE_WATCH=0, an unconfigured
// cache, or a Nix that would ignore the hook (an untrusted user of a
// multi-user Nix), which is said once and leaves the push to the end.

// watchState is a build's watcher, held in State (the steps that share it
// run one after the other).
type watchState struct {
	w   *nixcache.Watcher // nil: no watching for this build
	out *heldOutput       // what the watcher printed, for the stream
}

// cacheOptions are the Nix cache options of an edition build: progress
// on the build's stream, and its root named after what it builds.
func cacheOptions(s *State) nixcache.Options {
	o := nixcache.FromConfig(s.Cfg, s.Run, s.Log)
	o.Progress = &nixcache.Reporter{W: s.Stream}
	if o.Root.Name == "" {
		o.Root.Name = rootName(s.Req, s.Cfg.Channel)
	}
	return o
}

// watcher returns the build's watcher, starting it on the first call; nil
// when this build does not push while building.
func watcher(ctx context.Context, s *State) *nixcache.Watcher {
	if s.Req.Untrusted { // user code builds here: no key, no push
		return nil
	}
	if s.watch != nil {
		return s.watch.w
	}
	st := &watchState{}
	s.watch = st
	if !s.Cfg.CacheWatch {
		return nil
	}
	o := cacheOptions(s)
	if _, err := o.Location(); err != nil || !o.SecretKey.IsSet() {
		return nil // unconfigured: the cache step says so
	}
	hs, err := nixcache.DetectHookSupport(ctx, s.Run, nixcache.CurrentIdentity())
	switch {
	case err != nil:
		s.note(fmt.Sprintf("cache: pushing at the end of the build (Nix settings unreadable: %v)", firstLine(err)))
		return nil
	case !hs.OK:
		s.note("cache: pushing at the end of the build: " + hs.Reason)
		return nil
	}
	// The watcher works while the build prints: it prints into a buffer
	// that the build's stream receives at the cache step, and runs its
	// nix queries without logging them between the build's lines.
	st.out = &heldOutput{}
	o.Progress = &nixcache.Reporter{W: st.out}
	o.Log = slog.New(slog.NewTextHandler(st.out, nil))
	o.Runner = quiet(s.Run)
	w, err := nixcache.StartWatch(ctx, o, nixcache.WatchOptions{ChainHook: hs.Existing})
	if err != nil {
		s.note(fmt.Sprintf("cache: pushing at the end of the build (%v)", firstLine(err)))
		return nil
	}
	st.w = w
	fmt.Fprintf(s.Stream, "    cache: pushing each path as Nix builds it (post-build hook %s)\n", w.Hook())
	return w
}

// takeWatcher takes the build's watcher from its State, stops its
// printing into the buffer, and passes what it printed to the stream.
func takeWatcher(s *State) *nixcache.Watcher {
	st := s.watch
	if st == nil {
		return nil
	}
	s.watch = nil
	if st.out != nil {
		st.out.flushTo(s.Stream)
	}
	return st.w
}

// quiet is run without the command log, for commands that run while the
// build prints.
func quiet(run execx.Runner) execx.Runner {
	if e, ok := run.(*execx.Exec); ok {
		c := *e
		c.Log = nil
		return &c
	}
	return run
}

// heldOutput keeps what a watcher prints until the build's stream may
// take it: the last heldMax bytes, whole lines.
type heldOutput struct {
	mu  sync.Mutex
	buf []byte
	w   io.Writer // once flushed: writes go straight here
}

const heldMax = 64 << 10

func (h *heldOutput) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.w != nil {
		return h.w.Write(p)
	}
	h.buf = append(h.buf, p...)
	if over := len(h.buf) - heldMax; over > 0 {
		cut := bytes.IndexByte(h.buf[over:], '\n') + over + 1
		h.buf = append(h.buf[:0], h.buf[cut:]...)
	}
	return len(p), nil
}

// flushTo writes what is held to w and sends later writes there.
func (h *heldOutput) flushTo(w io.Writer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, _ = w.Write(h.buf)
	h.buf, h.w = nil, w
}

// drainFailed pushes what a failed build built, without a root, and
// reports it on the stream.
func drainFailed(ctx context.Context, s *State) {
	w := takeWatcher(s)
	if w == nil {
		return
	}
	sum, err := w.Finish(context.WithoutCancel(ctx))
	fmt.Fprintf(s.Stream, "    cache: the build failed; %d paths it built pushed (%d present, %d failed)\n", sum.Pushed, sum.Present, sum.Failed)
	if err != nil {
		s.Log.Warn("cache push after a failed build", "err", err)
	}
}

func (s *State) note(msg string) {
	fmt.Fprintf(s.Stream, "    %s\n", msg)
	s.Notes = append(s.Notes, msg)
}

func firstLine(err error) string {
	line, _, _ := strings.Cut(err.Error(), "\n")
	return line
}

// rootName is the GC root a build records: <edition>-<arch>-<kind>-<channel>
// for an edition's artifact, <id>-<arch>-<channel> for an artifact of no
// edition.
func rootName(r Request, channel string) string {
	if r.Edition() == "" {
		return nixcache.RootName(r.Instance.ID(), r.Arch(), channel)
	}
	return nixcache.RootName(r.Edition(), r.Arch(), string(r.Kind()), channel)
}
