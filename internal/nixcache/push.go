package nixcache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nix-community/go-nix/pkg/narinfo"
	"github.com/nix-community/go-nix/pkg/narinfo/signature"
	"github.com/nix-community/go-nix/pkg/nixhash"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/nixstore"
)

// PushError reports the paths a push could not publish.
type PushError struct {
	Failed int
	Errors []string
}

func (e *PushError) Error() string {
	msg := fmt.Sprintf("cache push: %d path(s) failed", e.Failed)
	if len(e.Errors) > 0 {
		msg += ": " + e.Errors[0]
		if len(e.Errors) > 1 {
			msg += fmt.Sprintf(" (and %d more)", len(e.Errors)-1)
		}
	}
	return msg
}

// Push publishes the runtime closure of installables (store paths, or
// flake installables that are already built). Unconfigured, it returns a
// *NotConfiguredError naming what to set.
func Push(ctx context.Context, o Options, installables []string) (Summary, error) {
	o = o.withDefaults()
	if err := o.checkPush(); err != nil {
		return Summary{}, err
	}
	if len(installables) == 0 {
		return Summary{}, errors.New("cache push: no store paths or installables given")
	}
	if o.Runner == nil {
		return Summary{}, errors.New("cache push: no command runner")
	}
	start := o.Now()
	p, err := newPusher(ctx, o)
	if err != nil {
		return Summary{}, err
	}
	// The cache side (nix-cache-info, the presence listing) does not depend
	// on the closure: it runs while nix path-info does.
	pre := p.startPrefetch(ctx)
	defer pre.stop()
	infos, err := nixstore.Query(ctx, o.Runner, installables...)
	if err != nil {
		return Summary{}, fmt.Errorf("cache push: %w", err)
	}
	return p.push(ctx, infos, pre, start)
}

// PushBestEffort is Push for the build pipeline: an unconfigured cache is a
// logged no-op and a failed push is logged and not returned, unless
// o.Strict, which makes both errors.
func PushBestEffort(ctx context.Context, o Options, installables []string) (Summary, error) {
	return bestEffort(o, func(o Options) (Summary, error) { return Push(ctx, o, installables) })
}

// PushPathsBestEffort is PushPaths with PushBestEffort's rules, for callers
// that already hold the closure's path infos (no second nix path-info).
func PushPathsBestEffort(ctx context.Context, o Options, infos []nixstore.PathInfo) (Summary, error) {
	return bestEffort(o, func(o Options) (Summary, error) { return PushPaths(ctx, o, infos) })
}

func bestEffort(o Options, push func(Options) (Summary, error)) (Summary, error) {
	o = o.withDefaults()
	if err := o.checkPush(); err != nil {
		if o.Strict {
			return Summary{}, err
		}
		o.Log.Info("cache push skipped", "reason", err.Error())
		return Summary{}, nil
	}
	s, err := push(o)
	if err != nil && !o.Strict {
		o.Log.Warn("cache push failed; continuing (set NIX_CACHE_STRICT=1 to fail instead)", "err", err)
		return s, nil
	}
	return s, err
}

// node is one path of the closure being pushed.
type node struct {
	pi   nixstore.PathInfo
	done chan struct{} // closed when the path's narinfo exists (or never will)
	ok   bool          // set before done is closed
	// gen is the generation of a narinfo already stored under the path's
	// name that is not provably ours (planted, or naming a NAR that is
	// gone or changed): the push replaces that version. 0: none.
	gen int64
}

type pusher struct {
	o     Options
	store blob.Store
	codec codec
	sk    signature.SecretKey
	pk    signature.PublicKey // sk's public half: what "ours" means
	// proving: the store keeps checksums and metadata, so narinfos carry
	// push proofs and presence needs no reads (see proofKey).
	proving bool
	lim     *limiter
	ups     *upstreams
	nodes   map[string]*node
	narB    atomic.Int64
	upB     atomic.Int64
	mu      sync.Mutex
	sum     Summary
}

// PushPaths publishes infos (a closure: every reference must be in infos or
// already in the cache).
func PushPaths(ctx context.Context, o Options, infos []nixstore.PathInfo) (Summary, error) {
	o = o.withDefaults()
	start := o.Now()
	p, err := newPusher(ctx, o)
	if err != nil {
		return Summary{}, err
	}
	pre := p.startPrefetch(ctx)
	defer pre.stop()
	return p.push(ctx, infos, pre, start)
}

// push publishes infos once the prefetch has written nix-cache-info.
func (p *pusher) push(ctx context.Context, infos []nixstore.PathInfo, pre *prefetch, start time.Time) (Summary, error) {
	ordered, err := nixstore.TopoSort(infos)
	if err != nil {
		return Summary{}, fmt.Errorf("cache push: %w", err)
	}
	if err := <-pre.info; err != nil {
		return Summary{}, err
	}
	todo := p.classify(ctx, ordered, pre)
	p.run(ctx, todo)
	p.sum.NarBytes, p.sum.UploadedBytes = p.narB.Load(), p.upB.Load()
	p.sum.Seconds = p.o.Now().Sub(start).Seconds()
	p.o.Progress.Done(p.sum)
	if p.sum.Failed > 0 {
		return p.sum, &PushError{Failed: p.sum.Failed, Errors: p.sum.Errors}
	}
	return p.sum, ctx.Err()
}

// prefetch is the cache-side work started before the closure is known.
type prefetch struct {
	info   chan error   // the nix-cache-info write
	list   chan listing // the presence listing
	cancel context.CancelFunc
	// budget is how many objects the listing may read: prefetchBudget
	// until the closure size is known, then listBudget of it.
	budget atomic.Int64
}

// listing is the narinfos at the cache root and the NARs below nar/; ok
// is false when the listing failed or stopped at its budget.
type listing struct {
	objects map[string]blob.Info
	seen    int
	ok      bool
}

// lookup describes the object key, or says it is not there.
type lookup func(ctx context.Context, key string) (blob.Info, bool)

func (l listing) lookup(_ context.Context, key string) (blob.Info, bool) {
	i, ok := l.objects[key]
	return i, ok
}

// prefetchBudget bounds the listing started before the closure size is
// known; presence then uses it only within listBudget of the closure.
const prefetchBudget = 20000

func (p *pusher) startPrefetch(ctx context.Context) *prefetch {
	lctx, cancel := context.WithCancel(ctx)
	f := &prefetch{info: make(chan error, 1), list: make(chan listing, 1), cancel: cancel}
	f.budget.Store(prefetchBudget)
	go func() { f.info <- p.writeCacheInfo(ctx) }()
	go func() { f.list <- p.listObjects(lctx, &f.budget) }()
	return f
}

// stop abandons a listing nobody waits for.
func (f *prefetch) stop() { f.cancel() }

func newPusher(ctx context.Context, o Options) (*pusher, error) {
	if err := o.checkPush(); err != nil {
		return nil, err
	}
	c, err := codecFor(o.Compression)
	if err != nil {
		return nil, err
	}
	sk, err := o.secretKey()
	if err != nil {
		return nil, err
	}
	p := &pusher{o: o, codec: c, sk: sk, pk: sk.ToPublicKey(), lim: newLimiter(o.Jobs, o.Now), nodes: map[string]*node{}}
	if p.store, err = o.open(ctx, p.lim); err != nil {
		return nil, fmt.Errorf("cache push: %w", err)
	}
	p.proving = proving(p.store)
	return p, nil
}

func (p *pusher) writeCacheInfo(ctx context.Context) error {
	err := p.store.Put(ctx, "nix-cache-info", strings.NewReader(CacheInfo),
		blob.PutOptions{CreateOnly: true, ContentType: cacheInfoType})
	if err != nil && !errors.Is(err, blob.ErrExists) {
		return fmt.Errorf("cache push: %w", err)
	}
	return nil
}

// classify decides, concurrently, which paths are already in the cache or
// served upstream; it returns the nodes to push, in topological order.
func (p *pusher) classify(ctx context.Context, ordered []nixstore.PathInfo, pre *prefetch) []*node {
	all := make([]*node, len(ordered))
	for i, pi := range ordered {
		all[i] = &node{pi: pi, done: make(chan struct{})}
		p.nodes[pi.Path] = all[i]
	}
	outcome := p.presence(ctx, all, pre)
	if len(p.o.Upstreams) > 0 {
		p.ups = probeUpstreams(ctx, p.o.HTTPClient, p.o.Upstreams, p.o.UpstreamTimeout, p.o.Log)
	}
	if p.ups.enabled() {
		parallel(ctx, len(all), max(32, 2*p.o.Jobs), func(i int) {
			// A path whose name here holds something unproven is pushed
			// (replacing it) even if an upstream serves it.
			if outcome[i] == "" && all[i].gen == 0 && p.ups.has(ctx, nixstore.HashPart(all[i].pi.Path)) {
				outcome[i] = Upstream
			}
		})
	}
	var todo []*node
	var bytes int64
	if n := replacing(all, outcome); n > 0 {
		p.o.Log.Info("cache push: narinfos in the cache that are not provably ours (unsigned, another key or path, no push proof, or their NAR gone or changed) are published again", "paths", n)
	}
	for i, n := range all {
		switch outcome[i] {
		case Present:
			p.sum.Present++
		case Upstream:
			p.sum.Upstream++
		default:
			todo = append(todo, n)
			bytes += int64(n.pi.NarSize)
			continue
		}
		n.ok = true
		close(n.done)
	}
	p.o.Progress.Start(len(todo), bytes)
	return todo
}

// replacing counts the nodes whose name holds an unproven narinfo.
func replacing(all []*node, outcome []Outcome) int {
	n := 0
	for i, nd := range all {
		if outcome[i] != Present && nd.gen != 0 {
			n++
		}
	}
	return n
}

// listThreshold is the closure size from which presence is decided by
// listing the cache's narinfos instead of one HEAD per path.
var listThreshold = 32

// listBudget bounds a presence listing: past this many objects (a cache
// much larger than the closure) the listing stops and HEADs decide.
func listBudget(paths int) int { return 16*paths + 1000 }

// presence marks the nodes that are provably in the cache already (see
// proven), deciding from one listing for a large closure (a page of 1000
// names per request instead of a request per path) or from a Stat per
// object for a small one or a cache too large to list cheaply. A node
// whose name holds something unproven gets the generation to replace.
func (p *pusher) presence(ctx context.Context, all []*node, pre *prefetch) []Outcome {
	look := lookup(p.stat)
	listed := false
	if len(all) >= listThreshold {
		pre.budget.Store(int64(listBudget(len(all))))
		if l := <-pre.list; l.ok && l.seen <= listBudget(len(all)) {
			look, listed = l.lookup, true
		}
	}
	if !listed {
		pre.stop()
	}
	outcome := make([]Outcome, len(all))
	parallel(ctx, len(all), max(32, 2*p.o.Jobs), func(i int) {
		v := p.judge(ctx, all[i].pi, look)
		if v.present {
			outcome[i] = Present
		}
		all[i].gen = v.gen
	})
	return outcome
}

func (p *pusher) stat(ctx context.Context, key string) (blob.Info, bool) {
	i, err := p.store.Stat(ctx, key)
	return i, err == nil
}

// verdict is what the cache holds for a path: provably the path, or the
// generation of an unproven narinfo to replace (0: no narinfo).
type verdict struct {
	present bool
	gen     int64
}

func (p *pusher) judge(ctx context.Context, pi nixstore.PathInfo, look lookup) verdict {
	info, ok := look(ctx, narinfoKey(pi.Path))
	switch {
	case !ok:
		return verdict{}
	case p.proven(ctx, pi, info, look):
		return verdict{present: true}
	}
	return verdict{gen: info.Generation}
}

// proven says whether the narinfo object info is provably ours for pi,
// with its NAR in place. Where the store keeps checksums and metadata, the
// narinfo's push proof must verify and the NAR must have the size and MD5
// it names: no object is read. Elsewhere (a directory) the narinfo is read:
// it must parse, name pi's store path and carry our signature over its
// fingerprint, and its NAR must exist with its FileSize.
func (p *pusher) proven(ctx context.Context, pi nixstore.PathInfo, info blob.Info, look lookup) bool {
	if p.proving {
		nar, err := checkProofWith(p.pk, &p.sk, info)
		if err != nil {
			return false
		}
		n, ok := look(ctx, nar.Key)
		return ok && nar.matches(n)
	}
	body, ni, err := readNarinfoBody(ctx, p.store, info.Key)
	if err != nil || ni.StorePath != pi.Path || !(p.wouldWrite(pi, ni, body) || verifies(ni, p.pk)) {
		return false
	}
	n, ok := look(ctx, ni.URL)
	return ok && (ni.FileSize == 0 || uint64(n.Size) == ni.FileSize)
}

// wouldWrite says whether body is, byte for byte, the narinfo this push
// writes for pi with ni's NAR: then it carries our signature over pi's
// fingerprint. Ed25519 signatures are deterministic, and making one costs
// well under half of verifying one, which counts when every narinfo of a
// closure is checked on each push; a narinfo written otherwise (another
// version, nix copy) is verified instead.
func (p *pusher) wouldWrite(pi nixstore.PathInfo, ni *narinfo.NarInfo, body []byte) bool {
	if ni.FileHash == nil || ni.FileHash.Algo() != nixhash.SHA256 {
		return false
	}
	st := stored{URL: ni.URL, FileHash: ni.FileHash.Digest(), FileSize: ni.FileSize}
	want, err := buildNarInfo(pi, codec{name: ni.Compression}, st, p.sk)
	return err == nil && want.String() == string(body)
}

var errListBudget = errors.New("listing budget exhausted")

// listObjects lists the narinfos at the cache root and the NARs below
// nar/, stopping once it has read more objects than budget allows (the
// budget may shrink while it runs).
func (p *pusher) listObjects(ctx context.Context, budget *atomic.Int64) listing {
	l := listing{objects: map[string]blob.Info{}}
	err := p.store.List(ctx, "", func(i blob.Info) error {
		if l.seen++; int64(l.seen) > budget.Load() {
			return errListBudget
		}
		if isNarinfoKey(i.Key) || strings.HasPrefix(i.Key, "nar/") {
			l.objects[i.Key] = i
		}
		return nil
	})
	if err != nil {
		if !errors.Is(err, errListBudget) && ctx.Err() == nil {
			p.o.Log.Warn("cache listing failed; checking paths one by one", "err", err)
		}
		return listing{}
	}
	l.ok = true
	return l
}

func isNarinfoKey(key string) bool {
	return strings.HasSuffix(key, ".narinfo") && !strings.Contains(key, "/")
}

// run pushes every node: NARs concurrently (bounded by the adaptive
// limiter), each narinfo once its NAR is stored and its references are
// published.
func (p *pusher) run(ctx context.Context, todo []*node) {
	var wg sync.WaitGroup
	for _, n := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := p.pushOne(ctx, n)
			p.finish(n, err)
		}()
	}
	wg.Wait()
}

func (p *pusher) finish(n *node, err error) {
	p.mu.Lock()
	o := Pushed
	switch {
	case err == nil:
		p.sum.Pushed++
		n.ok = true
	case errors.Is(err, errRaced):
		o, err = Present, nil
		p.sum.Present++
		n.ok = true
	default:
		o = Failed
		p.sum.Failed++
		p.sum.Errors = append(p.sum.Errors, fmt.Sprintf("%s: %v", n.pi.Path, err))
	}
	p.mu.Unlock()
	close(n.done)
	p.o.Progress.Path(n.pi.Path, o, err)
}

// errRaced means another pusher published the narinfo first.
var errRaced = errors.New("narinfo published concurrently")

func (p *pusher) pushOne(ctx context.Context, n *node) error {
	st, err := p.uploadNAR(ctx, n.pi)
	if err != nil {
		return err
	}
	if err := p.waitReferences(ctx, n); err != nil {
		return err
	}
	return p.publish(ctx, n, st)
}

// waitReferences blocks until every reference's narinfo exists.
func (p *pusher) waitReferences(ctx context.Context, n *node) error {
	for _, r := range n.pi.References {
		if r == n.pi.Path {
			continue
		}
		dep, ok := p.nodes[r]
		if !ok {
			if _, err := p.store.Stat(ctx, narinfoKey(r)); err != nil {
				return fmt.Errorf("reference %s is neither in the closure nor in the cache: %w", r, err)
			}
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-dep.done:
		}
		if !dep.ok {
			return fmt.Errorf("reference %s was not published", r)
		}
	}
	return nil
}

// publish writes n's narinfo, with its push proof where the store keeps
// them: create-only, or replacing the unproven version found (n.gen). When
// the name changed meanwhile (another pusher, or a planted object), the
// path is judged again: provably there is a race lost (errRaced), anything
// else is replaced, conditioned on the version just inspected, so two
// honest pushers never overwrite each other's narinfo.
func (p *pusher) publish(ctx context.Context, n *node, st stored) error {
	ni, err := buildNarInfo(n.pi, p.codec, st, p.sk)
	if err != nil {
		return err
	}
	body := []byte(ni.String())
	key := narinfoKey(n.pi.Path)
	opt := blob.PutOptions{ContentType: narinfoType, SizeHint: int64(len(body))}
	if p.proving {
		if opt.Metadata, err = makeProof(p.sk, key, body, st.ref()); err != nil {
			return err
		}
	}
	gen := n.gen
	for range maxPublishRounds {
		opt.CreateOnly, opt.IfGeneration = gen == 0, gen
		err := retry(ctx, p.lim, func() error {
			return p.store.Put(ctx, key, bytes.NewReader(body), opt)
		})
		if !errors.Is(err, blob.ErrExists) && !errors.Is(err, blob.ErrChanged) {
			return err
		}
		v := p.judge(ctx, n.pi, p.stat)
		if v.present {
			return errRaced
		}
		gen = v.gen
	}
	return fmt.Errorf("%s changed %d times while being published; left as is", key, maxPublishRounds)
}

// maxPublishRounds bounds how often publish re-inspects a narinfo name
// that keeps changing.
const maxPublishRounds = 4

// retry runs fn up to 3 times while it fails transiently, telling the
// limiter and backing off between attempts.
func retry(ctx context.Context, lim *limiter, fn func() error) error {
	var err error
	for attempt := range 3 {
		if attempt > 0 {
			lim.Throttled()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
			}
		}
		if err = fn(); err == nil || !blob.Transient(err) {
			return err
		}
	}
	return err
}

// parallel runs fn(0..n-1) on at most workers goroutines.
func parallel(ctx context.Context, n, workers int, fn func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}
