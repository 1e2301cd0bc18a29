package push

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/nixcache/cachefmt"
	"github.com/socioprophet/sourceos/internal/nixcache/internal/work"
	"github.com/socioprophet/sourceos/internal/nixcache/lease"
	"github.com/socioprophet/sourceos/internal/nixstore"
)

// Session is a push that takes paths as they come: Add hands it closures
// (at the end of a build, or one built path at a time while Nix builds),
// and it publishes each path as soon as it can, keeping the closure
// invariant: a narinfo is written only after its NAR is stored and after
// the narinfos of all its references exist. Close waits for everything
// added and records the root.
//
// NAR uploads go through one queue, shallowest paths first (those whose
// narinfos the rest of the closure waits for), as many at a time as the
// limiter allows. A narinfo is written the moment its NAR is stored and
// its last reference is published, without waiting behind uploads, so a
// closure of reference depth d costs d narinfo round trips beyond its
// uploads, not more.
type Session struct {
	p      *pusher
	start  time.Time
	pre    *prefetch
	ctx    context.Context
	cancel context.CancelFunc
	queue  *narQueue
	// relying: the session has recorded objects it relies on in its
	// in-flight root (a GC may run); uploads then run ahead of the
	// frontier without bound (see waitFrontier).
	relying atomic.Bool

	mu      sync.Mutex
	nodes   map[string]*node
	seq     int64
	sum     Summary
	started bool
	pending sync.WaitGroup
	closed  bool

	// depths counts the paths to push not yet settled, by depth; the
	// dispatcher keeps uploads within lookahead levels of the shallowest.
	depths  map[int]int
	settled chan struct{} // closed when a depth's count drops

	upsOnce sync.Once
	idOnce  sync.Once
	id      string

	// GC protocol (guard.go): the check made before the snapshot in
	// use, the latest check, and the in-flight root.
	gcMu     sync.Mutex
	gcBase   *lease.Check
	bases    int // how often gcBase was replaced
	gcLast   lease.Check
	inflight inFlight
	// confirmed: paths found present, recorded in the in-flight root and
	// found again a window later (secure).
	confirmed map[string]bool
}

// node is one path of the session.
type node struct {
	pi    nixstore.PathInfo
	depth int   // 0 for a path with no reference in the session
	seq   int64 // order of arrival, to break ties
	// gen is the generation of a narinfo already stored under the path's
	// name that is not provably ours (planted, or naming a NAR that is
	// gone or changed): the push replaces that version. 0: none.
	gen int64

	refsLeft   int  // references not yet published
	queued     bool // counted in Session.depths until settled
	found      bool // in the cache before the session: relied on, not written
	uploaded   bool // the NAR is stored (st)
	st         stored
	stBase     int  // the session's base when the upload began (see guard)
	done, ok   bool // published (or found present), or failed
	dependents []*node
}

// Open starts a session: it writes nix-cache-info and starts listing the
// cache for presence, while the caller finds out what to push.
func Open(ctx context.Context, o Options) (*Session, error) {
	o = o.withDefaults()
	p, err := newPusher(ctx, o)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	s := &Session{p: p, start: o.Now(), ctx: sctx, cancel: cancel, queue: newNarQueue(),
		nodes: map[string]*node{}, inflight: inFlight{paths: map[string]time.Time{}, nars: map[string]time.Time{}}, confirmed: map[string]bool{},
		depths: map[int]int{}, settled: make(chan struct{})}
	s.pre = p.startPrefetch(sctx)
	go s.dispatch()
	return s, nil
}

// Add publishes the paths of infos that the session does not hold yet.
// infos must be closed under references, up to paths the session holds
// or the cache already has. It returns once presence is decided; the
// uploads go on in the background (Wait, Close).
func (s *Session) Add(ctx context.Context, infos []nixstore.PathInfo) {
	ordered, err := nixstore.TopoSort(infos)
	if err != nil {
		ordered = infos // a cycle: every path is tried, none can be published
	}
	fresh := s.register(ordered)
	if len(fresh) == 0 {
		return
	}
	if err := s.pre.ready(ctx); err != nil {
		s.failAll(fresh, err)
		return
	}
	outcome := s.presence(ctx, fresh)
	s.secure(ctx, fresh, outcome)
	s.upstream(ctx, fresh, outcome)
	missing := s.externals(ctx, fresh, infos)
	todo, bytes := s.wire(fresh, outcome, missing)
	s.announce(len(todo), bytes)
	for _, n := range todo {
		s.queue.push(n)
	}
}

// register makes nodes for the paths the session does not hold.
func (s *Session) register(ordered []nixstore.PathInfo) []*node {
	s.mu.Lock()
	defer s.mu.Unlock()
	var fresh []*node
	for _, pi := range ordered {
		if _, ok := s.nodes[pi.Path]; ok {
			continue
		}
		s.seq++
		n := &node{pi: pi, seq: s.seq}
		s.nodes[pi.Path] = n
		fresh = append(fresh, n)
	}
	s.pending.Add(len(fresh))
	return fresh
}

func (s *Session) failAll(fresh []*node, err error) {
	for _, n := range fresh {
		s.finish(n, err)
	}
}

// externals checks that the references of fresh that neither the session
// nor infos hold are in the cache; it returns those that are not.
func (s *Session) externals(ctx context.Context, fresh []*node, infos []nixstore.PathInfo) map[string]bool {
	inBatch := make(map[string]bool, len(infos))
	for _, pi := range infos {
		inBatch[pi.Path] = true
	}
	var outside []string
	seen := map[string]bool{}
	s.mu.Lock()
	for _, n := range fresh {
		for _, r := range n.pi.References {
			if _, held := s.nodes[r]; !held && !inBatch[r] && !seen[r] {
				seen[r] = true
				outside = append(outside, r)
			}
		}
	}
	s.mu.Unlock()
	keys := make([]string, len(outside))
	for i, p := range outside {
		keys[i] = cachefmt.NarinfoKey(p)
	}
	missing := map[string]bool{}
	_, errs := blob.StatMany(ctx, s.p.store, keys, 32)
	for i, err := range errs {
		if err != nil {
			missing[outside[i]] = true
		}
	}
	return missing
}

// wire settles the present and upstream paths and links every other one
// to its references, in topological order; it returns the paths to push.
func (s *Session) wire(fresh []*node, outcome []Outcome, missing map[string]bool) ([]*node, int64) {
	var todo []*node
	var bytes int64
	var failed []failure
	s.mu.Lock()
	for i, n := range fresh {
		switch outcome[i] {
		case Present, Upstream:
			s.count(outcome[i])
			n.done, n.ok, n.found = true, true, outcome[i] == Present
			s.pending.Done()
			continue
		}
		failed = append(failed, s.queueLocked(n, missing, &todo, &bytes)...)
	}
	s.mu.Unlock()
	s.report(failed)
	return todo, bytes
}

// queueLocked links n to its references and adds it to todo and its
// NAR size to bytes, or fails it (returning what failed with it). s.mu
// is held.
func (s *Session) queueLocked(n *node, missing map[string]bool, todo *[]*node, bytes *int64) []failure {
	if err := s.link(n, missing); err != nil {
		return s.failLocked(n, err)
	}
	n.queued = true
	s.depths[n.depth]++
	*todo = append(*todo, n)
	*bytes += int64(n.pi.NarSize)
	return nil
}

// link records n as a dependent of its unpublished references.
func (s *Session) link(n *node, missing map[string]bool) error {
	for _, r := range n.pi.References {
		if r == n.pi.Path {
			continue
		}
		if missing[r] {
			return fmt.Errorf("reference %s is neither in the closure nor in the cache", r)
		}
		dep, ok := s.nodes[r]
		switch {
		case !ok:
			continue // in the cache (checked by externals)
		case dep.done && !dep.ok:
			return fmt.Errorf("reference %s was not published", r)
		case !dep.done:
			dep.dependents = append(dep.dependents, n)
			n.refsLeft++
		}
		n.depth = max(n.depth, dep.depth+1)
	}
	return nil
}

func (s *Session) count(o Outcome) {
	switch o {
	case Present:
		s.sum.Present++
	case Upstream:
		s.sum.Upstream++
	}
}

// announce tells the progress how much this batch adds.
func (s *Session) announce(paths int, bytes int64) {
	s.mu.Lock()
	first := !s.started
	s.started = true
	s.mu.Unlock()
	if first || paths > 0 {
		s.p.o.Progress.Start(paths, bytes)
	}
}

// upstream marks the paths that an upstream cache serves.
func (s *Session) upstream(ctx context.Context, fresh []*node, outcome []Outcome) {
	if len(s.p.o.Upstreams) == 0 {
		return
	}
	s.upsOnce.Do(func() {
		s.p.ups = cachefmt.ProbeUpstreams(ctx, s.p.o.HTTPClient, s.p.o.Upstreams, s.p.o.UpstreamTimeout, s.p.o.Log)
	})
	if !s.p.ups.Enabled() {
		return
	}
	work.Parallel(ctx, len(fresh), max(32, 2*s.p.o.Jobs), func(i int) {
		// A path whose name here holds something unproven is pushed
		// (replacing it) even if an upstream serves it.
		if outcome[i] == "" && fresh[i].gen == 0 && s.p.ups.Has(ctx, nixstore.HashPart(fresh[i].pi.Path)) {
			outcome[i] = Upstream
		}
	})
}

// dispatch starts the NAR uploads in queue order, each once the limiter
// has a slot and budget for it.
func (s *Session) dispatch() {
	for {
		n := s.queue.pop(s.ctx)
		if n == nil {
			s.drain(s.ctx.Err())
			return
		}
		if s.isDone(n) {
			continue
		}
		if !s.waitFrontier(n) {
			s.finish(n, s.ctx.Err())
			continue
		}
		w := weight(n.pi.NarSize)
		if err := s.p.lim.AcquireBytes(s.ctx, w); err != nil {
			s.finish(n, err)
			continue
		}
		go s.upload(n, w)
	}
}

// lookahead is how many levels of references the NAR uploads may run
// ahead of the shallowest path not yet published. The narinfos of a level
// wait for the level below anyway; uploads far ahead of them only compete
// with them for the CPU and the link.
var lookahead = 4

// waitFrontier waits until n is within lookahead levels of the shallowest
// path of the session not yet settled; false when the session ends.
func (s *Session) waitFrontier(n *node) bool {
	for {
		s.mu.Lock()
		front := n.depth
		for d, c := range s.depths {
			if c > 0 && d < front {
				front = d
			}
		}
		ch := s.settled
		s.mu.Unlock()
		// Once a GC may run, the narinfos a level relies on wait a window
		// each (see guard): uploads held behind them would find the NARs
		// other pushes stored, and start their windows, only level after
		// level.
		if n.depth <= front+lookahead || s.relying.Load() {
			return true
		}
		select {
		case <-ch:
		case <-s.ctx.Done():
			return false
		}
	}
}

// settleLocked takes a settled node out of the depth counts.
func (s *Session) settleLocked(n *node) {
	if !n.queued {
		return
	}
	n.queued = false
	if s.depths[n.depth]--; s.depths[n.depth] <= 0 {
		delete(s.depths, n.depth)
	}
	close(s.settled)
	s.settled = make(chan struct{})
}

// drain fails whatever is still queued when the session ends.
func (s *Session) drain(err error) {
	if err == nil {
		err = errors.New("session closed")
	}
	for _, n := range s.queue.takeAll() {
		s.finish(n, err)
	}
}

func (s *Session) isDone(n *node) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return n.done
}

// weight is what an upload of a NAR of size narSize may hold in memory:
// the store's upload buffer (up to 8 MiB, at least 256 KiB) and, for a
// large NAR, its compressor.
func weight(narSize uint64) int64 {
	const unit, most = 256 << 10, 8 << 20
	buf := min(most, (int64(narSize)+4096+unit-1)/unit*unit)
	return buf + min(int64(narSize), 1<<20)
}

// upload stores n's NAR, then publishes its narinfo if its references
// are all published.
func (s *Session) upload(n *node, w int64) {
	base := s.base()
	st, err := s.p.uploadNAR(s.ctx, n.pi)
	s.p.lim.ReleaseBytes(err == nil, w)
	if err != nil {
		s.finish(n, err)
		return
	}
	if st.existing && !s.fastPath(s.ctx) {
		// Another push stored this NAR: protect it now (see record).
		// A failure here is guard's to handle when n is published.
		_ = s.record(s.ctx, reliance{nars: []string{st.URL}})
	}
	s.mu.Lock()
	n.uploaded, n.st, n.stBase = true, st, base
	ready := !n.done && n.refsLeft == 0
	s.mu.Unlock()
	if ready {
		go s.publishNode(n)
	}
}

// publishNode writes n's narinfo.
func (s *Session) publishNode(n *node) {
	select {
	case s.p.meta <- struct{}{}:
	case <-s.ctx.Done():
		s.finish(n, s.ctx.Err())
		return
	}
	err := s.guardAndPublish(n)
	<-s.p.meta
	if errors.Is(err, errHeld) {
		return
	}
	s.finish(n, err)
}

// guardAndPublish writes n's narinfo once guard allows it. On the fast
// path the write must be made before the check guard relied on expires
// (GC may have decided since): one that is not (a slow link, retries,
// a server asking to wait) is abandoned, and the narinfo goes through
// the slow path instead.
func (s *Session) guardAndPublish(n *node) error {
	slow := false
	for {
		deadline, err := s.guard(s.ctx, n, slow)
		if errors.Is(err, errNARGone) {
			err = s.reupload(n)
		}
		if err != nil {
			return err
		}
		if deadline.IsZero() {
			return s.p.publish(s.ctx, n, n.st)
		}
		ctx, cancel := context.WithDeadline(s.ctx, deadline)
		err = s.p.publish(ctx, n, n.st)
		expired := ctx.Err() != nil && s.ctx.Err() == nil
		cancel()
		if err == nil || !expired {
			return err
		}
		s.p.o.Log.Info("cache push: a narinfo was not written while the GC check held; taking the slow path", "path", n.pi.Path)
		slow = true
	}
}

// reupload stores n's NAR again, after a concurrent GC deleted the copy
// another push had stored and n relied on: the new one is this push's
// own (no reliance), GC spares it as young.
func (s *Session) reupload(n *node) error {
	w := weight(n.pi.NarSize)
	if err := s.p.lim.AcquireBytes(s.ctx, w); err != nil {
		return err
	}
	st, err := s.p.uploadNAR(s.ctx, n.pi)
	s.p.lim.ReleaseBytes(err == nil, w)
	if err != nil {
		return err
	}
	if st.existing {
		return fmt.Errorf("%w (%s, stored again meanwhile)", errRelied, st.URL)
	}
	s.mu.Lock()
	n.st = st
	s.mu.Unlock()
	return nil
}

// requeue pushes again the paths of gone, found present earlier but
// deleted by a concurrent GC since (gens: the generation of what their
// names hold now, 0 for nothing): they are no longer found, and what of
// the session is not yet published waits for them again.
func (s *Session) requeue(gone []*node, gens []int64) {
	order := make([]int, len(gone))
	for k := range order {
		order[k] = k
	}
	sort.Slice(order, func(i, j int) bool { return gone[order[i]].seq < gone[order[j]].seq }) // references first
	var todo []*node
	var bytes int64
	var failed []failure
	s.mu.Lock()
	for _, k := range order {
		n := gone[k]
		n.done, n.ok, n.found, n.uploaded, n.st, n.refsLeft, n.gen = false, false, false, false, stored{}, 0, gens[k]
		s.sum.Present--
		s.pending.Add(1)
		failed = append(failed, s.queueLocked(n, nil, &todo, &bytes)...)
	}
	s.mu.Unlock()
	s.report(failed)
	s.announce(len(todo), bytes)
	for _, n := range todo {
		s.queue.push(n)
	}
}

// waitRequeued holds n back, if a reference of n is being pushed again
// (requeue), until that reference is published (it then publishes n);
// false if n may be published now. Called with s.mu held.
func (s *Session) waitRequeued(n *node) bool {
	for _, r := range n.pi.References {
		if d, ok := s.nodes[r]; ok && r != n.pi.Path && !d.done {
			d.dependents = append(d.dependents, n)
			n.refsLeft++
		}
	}
	return n.refsLeft > 0
}

// failure is a node that failed, for the progress.
type failure struct {
	n   *node
	err error
}

// finish settles n: published (nil), lost to a concurrent pusher
// (errRaced: present), or failed, with its dependents.
func (s *Session) finish(n *node, err error) {
	s.mu.Lock()
	if n.done {
		s.mu.Unlock()
		return
	}
	var ready []*node
	var failed []failure
	o := Pushed
	switch {
	case err == nil:
		s.sum.Pushed++
	case errors.Is(err, errRaced):
		o, err = Present, nil
		s.sum.Present++
		n.found = true
	default:
		failed = s.failLocked(n, err)
	}
	if err == nil {
		n.done, n.ok = true, true
		s.settleLocked(n)
		s.pending.Done()
		for _, d := range n.dependents {
			d.refsLeft--
			if d.refsLeft == 0 && d.uploaded && !d.done {
				ready = append(ready, d)
			}
		}
		n.dependents = nil
	}
	s.mu.Unlock()
	if err == nil {
		s.p.o.Progress.Path(n.pi.Path, o, nil)
	}
	s.report(failed)
	for _, d := range ready {
		go s.publishNode(d)
	}
}

// failLocked fails n and, transitively, every path waiting for it.
func (s *Session) failLocked(n *node, err error) []failure {
	var out []failure
	stack := []failure{{n, err}}
	for len(stack) > 0 {
		f := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if f.n.done {
			continue
		}
		f.n.done = true
		s.settleLocked(f.n)
		s.pending.Done()
		s.sum.Failed++
		s.sum.Errors = append(s.sum.Errors, fmt.Sprintf("%s: %v", f.n.pi.Path, f.err))
		out = append(out, f)
		for _, d := range f.n.dependents {
			stack = append(stack, failure{d, fmt.Errorf("reference %s was not published", f.n.pi.Path)})
		}
		f.n.dependents = nil
	}
	return out
}

func (s *Session) report(failed []failure) {
	for _, f := range failed {
		s.p.o.Progress.Path(f.n.pi.Path, Failed, f.err)
	}
}

// Wait returns once every path added so far is published or failed.
func (s *Session) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { s.pending.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Summary returns the figures so far.
func (s *Session) Summary() Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	sum := s.sum
	sum.Errors = append([]string(nil), s.sum.Errors...)
	sum.NarBytes, sum.UploadedBytes = s.p.narB.Load(), s.p.upB.Load()
	sum.Seconds = s.p.o.Now().Sub(s.start).Seconds()
	return sum
}

// Close waits for every path added, makes the writes durable, records a
// root naming tops (unless a path failed) and ends the session.
func (s *Session) Close(ctx context.Context, tops []string) (Summary, error) {
	return s.end(ctx, tops, true)
}

// Finish is Close without a root: for a build that failed, whose paths
// stay for the grace period (a retry substitutes them) but are not kept.
func (s *Session) Finish(ctx context.Context) (Summary, error) {
	return s.end(ctx, nil, false)
}

func (s *Session) end(ctx context.Context, tops []string, root bool) (Summary, error) {
	err := s.Wait(ctx)
	if err == nil {
		err = blob.Sync(ctx, s.p.store)
	}
	sum := s.Summary()
	if err == nil && root && sum.Failed == 0 {
		err = s.recordRoot(ctx, tops)
		sum = s.Summary() // paths a GC deleted may have been pushed again
	}
	s.Abandon()
	s.p.o.Progress.Done(sum)
	switch {
	case err != nil:
		return sum, err
	case sum.Failed > 0:
		return sum, &Error{Failed: sum.Failed, Errors: sum.Errors}
	}
	return sum, ctx.Err()
}

// Abandon ends the session's background work (the paths in flight
// fail); Close and Finish call it.
func (s *Session) Abandon() {
	s.mu.Lock()
	closed := s.closed
	s.closed = true
	s.mu.Unlock()
	if !closed {
		s.cancel()
		s.pre.stop()
	}
}

// Infos returns the path info of every path the session holds.
func (s *Session) Infos() []nixstore.PathInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]nixstore.PathInfo, 0, len(s.nodes))
	for _, n := range s.nodes {
		out = append(out, n.pi)
	}
	return out
}

// Paths returns every path the session holds, in arrival order.
func (s *Session) Paths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.nodes))
	for p, n := range s.nodes {
		out[n.seq-1] = p
	}
	return out
}

// prefetch is the cache-side work started before the closure is known.
type prefetch struct {
	info   chan error       // the nix-cache-info write
	gc     chan lease.Check // the GC check made before the listing
	list   chan listing     // the presence listing
	cancel context.CancelFunc
	// budget is how many objects the listing may read: prefetchBudget
	// until the closure size is known, then listBudget of it.
	budget atomic.Int64

	once    sync.Once
	infoErr error
	gcOnce  sync.Once
	gcFirst lease.Check
	lmu     sync.Mutex
	got     *listing
}

// listing is the narinfos at the cache root and the NARs below nar/; ok
// is false when the listing failed or stopped at its budget, or was not
// made: skipped, because GC recorded more objects than the budget allows
// (objects).
type listing struct {
	objects map[string]blob.Info
	seen    int
	ok      bool
	skipped bool
	count   int64
}

func (l listing) lookup(_ context.Context, key string) (blob.Info, bool) {
	i, ok := l.objects[key]
	return i, ok
}

// prefetchBudget bounds the listing started before the closure size is
// known; presence then uses it only within listBudget of the closure.
const prefetchBudget = 20000

func (p *pusher) startPrefetch(ctx context.Context) *prefetch {
	lctx, cancel := context.WithCancel(ctx)
	f := &prefetch{info: make(chan error, 1), gc: make(chan lease.Check, 1), list: make(chan listing, 1), cancel: cancel}
	f.budget.Store(prefetchBudget)
	go func() { f.info <- p.writeCacheInfo(ctx) }()
	go func() {
		// The object count the last GC recorded is read beside the GC
		// check (no added round trip): a cache known to hold more than
		// the budget is not listed (see presence).
		stats := make(chan lease.Stats, 1)
		go func() {
			s, ok := lease.ReadStats(lctx, p.store)
			if !ok {
				s.Objects = -1
			}
			stats <- s
		}()
		// The check is the session's (stop cancels only the listing).
		f.gc <- p.checkGC(ctx) // before the listing: see guard.go
		if s := <-stats; s.Objects > prefetchBudget {
			f.list <- listing{skipped: true, count: s.Objects}
			return
		}
		f.list <- p.listObjects(lctx, &f.budget)
	}()
	return f
}

// gcState is the GC check made before the session's first listing.
func (f *prefetch) gcState(ctx context.Context) lease.Check {
	f.gcOnce.Do(func() {
		select {
		case f.gcFirst = <-f.gc:
		case <-ctx.Done():
		}
	})
	return f.gcFirst
}

// ready waits for the nix-cache-info write.
func (f *prefetch) ready(ctx context.Context) error {
	f.once.Do(func() {
		select {
		case f.infoErr = <-f.info:
		case <-ctx.Done():
			f.infoErr = ctx.Err()
		}
	})
	return f.infoErr
}

// snapshot returns the presence listing; without wait, only if it is
// already there.
func (f *prefetch) snapshot(ctx context.Context, wait bool) (listing, bool) {
	f.lmu.Lock()
	defer f.lmu.Unlock()
	if f.got != nil {
		return *f.got, true
	}
	if !wait {
		select {
		case l := <-f.list:
			f.got = &l
			return l, true
		default:
			return listing{}, false
		}
	}
	select {
	case l := <-f.list:
		f.got = &l
		return l, true
	case <-ctx.Done():
		return listing{}, false
	}
}

// stop abandons a listing nobody waits for (not the GC check made
// before it, which the session relies on).
func (f *prefetch) stop() { f.cancel() }

// listObjects lists the narinfos at the cache root and the NARs below
// nar/, stopping once it has read more objects than budget allows (the
// budget may shrink while it runs).
func (p *pusher) listObjects(ctx context.Context, budget *atomic.Int64) listing {
	l := listing{objects: map[string]blob.Info{}}
	err := cachefmt.List(ctx, p.store, budget, func(i blob.Info) {
		l.seen++
		if cachefmt.IsNarinfoKey(i.Key) || cachefmt.IsNARKey(i.Key) {
			l.objects[i.Key] = i
		}
	})
	if err != nil {
		if !errors.Is(err, cachefmt.ErrListBudget) && ctx.Err() == nil {
			p.o.Log.Warn("cache listing failed; checking paths one by one", "err", err)
		}
		return listing{}
	}
	l.ok = true
	return l
}

// listBudget bounds a presence listing: past this many objects (a cache
// much larger than the closure) the listing stops and look-ups decide.
func listBudget(paths int) int { return 16*paths + 1000 }

// listWorth is how many objects per path a cache of known size may hold
// for a listing to be worth more than batched look-ups.
const listWorth = 4

// presence marks the nodes that are provably in the cache already (see
// proven), deciding from the session's listing of the cache (ranges
// listed at once, 1000 names per request) when it is there or the batch
// is large and the cache within the listing budget, and from batched
// look-ups otherwise (100 objects a request on GCS: the narinfos, then
// the NARs their proofs name). A node whose name holds something unproven
// gets the generation to replace.
func (s *Session) presence(ctx context.Context, fresh []*node) []Outcome {
	look := s.lookups(ctx, fresh)
	outcome := make([]Outcome, len(fresh))
	work.Parallel(ctx, len(fresh), max(32, 2*s.p.o.Jobs), func(i int) {
		v := s.p.judge(ctx, fresh[i].pi, look)
		if v.present {
			outcome[i] = Present
		}
		fresh[i].gen = v.gen
	})
	if n := replacing(fresh, outcome); n > 0 {
		s.p.o.Log.Info("cache push: narinfos in the cache that are not provably ours (unsigned, another key or path, no push proof, or their NAR gone or changed) are published again", "paths", n)
	}
	return outcome
}

// lookups decides how presence looks objects up for fresh: the listing,
// or batched look-ups.
func (s *Session) lookups(ctx context.Context, fresh []*node) lookup {
	large := len(fresh) >= s.p.o.ListThreshold
	var held int
	if large {
		s.mu.Lock()
		held = len(s.nodes)
		s.mu.Unlock()
		s.pre.budget.Store(int64(max(prefetchBudget, listBudget(held))))
	}
	l, ok := s.pre.snapshot(ctx, large)
	switch {
	case ok && l.ok:
		return s.fresh(ctx, l).lookup
	case ok && l.skipped && large && l.count <= int64(listWorth*held):
		// A closure large enough to make the recorded cache worth listing:
		// a listing reads (and decodes) every object, batched look-ups
		// two per path.
		if nl := s.p.listObjects(ctx, &s.pre.budget); nl.ok {
			s.pre.lmu.Lock()
			s.pre.got = &nl
			s.pre.lmu.Unlock()
			return nl.lookup
		}
	}
	return s.p.batchLookup(ctx, fresh)
}

// batchLookup looks up, in batches, the narinfos of fresh and the NARs
// their proofs name, and returns a lookup answering from what it found
// (and asking the store about any other key).
func (p *pusher) batchLookup(ctx context.Context, fresh []*node) lookup {
	keys := make([]string, len(fresh))
	for i, n := range fresh {
		keys[i] = cachefmt.NarinfoKey(n.pi.Path)
	}
	found := make(map[string]blob.Info, 2*len(keys))
	asked := make(map[string]bool, 2*len(keys))
	add := func(keys []string) []blob.Info {
		infos, errs := blob.StatMany(ctx, p.store, keys, 32)
		var got []blob.Info
		for i, err := range errs {
			switch {
			case err == nil:
				found[keys[i]] = infos[i]
				asked[keys[i]] = true
				got = append(got, infos[i])
			case errors.Is(err, blob.ErrNotFound):
				asked[keys[i]] = true
			}
		}
		return got
	}
	var nars []string
	seen := map[string]bool{}
	for _, i := range add(keys) {
		if k, ok := cachefmt.ProofNARKey(i); ok && !seen[k] {
			seen[k] = true
			nars = append(nars, k)
		}
	}
	add(nars)
	return func(ctx context.Context, key string) (blob.Info, bool) {
		if i, ok := found[key]; ok {
			return i, true
		}
		if asked[key] {
			return blob.Info{}, false
		}
		return p.stat(ctx, key)
	}
}

// fresh returns l, or a new listing of the cache if a GC may have
// deleted objects since l was made (see guard.go).
func (s *Session) fresh(ctx context.Context, l listing) listing {
	if s.fastPath(ctx) {
		return l
	}
	// The paths found under the check the new one replaces may be among
	// what a GC deleted since: they are looked up again (and pushed again
	// if gone) before the new check is relied on. Until then the old check
	// stands, and it takes every narinfo to the slow path.
	if err := s.secureFound(ctx); err != nil {
		return l
	}
	check := s.p.checkGC(ctx)
	nl := s.p.listObjects(ctx, &s.pre.budget)
	if !nl.ok {
		return l
	}
	s.pre.lmu.Lock()
	s.pre.got = &nl
	s.pre.lmu.Unlock()
	s.gcMu.Lock()
	s.gcBase, s.gcLast = &check, check
	s.bases++
	s.gcMu.Unlock()
	return nl
}

// replacing counts the nodes whose name holds an unproven narinfo.
func replacing(fresh []*node, outcome []Outcome) int {
	n := 0
	for i, nd := range fresh {
		if outcome[i] != Present && nd.gen != 0 {
			n++
		}
	}
	return n
}
