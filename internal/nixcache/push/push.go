// Package push publishes Nix store closures to a binary cache: a session
// takes closures as they come (at the end of a build, or one built path at
// a time while Nix builds), decides presence, streams NARs and writes
// narinfos under the closure invariant, and records a root.
//
// A push streams each path's NAR (nardump) through hashing and compression
// straight into a create-only upload, so memory stays bounded whatever the
// NAR size and nothing is copied to disk. A path's narinfo is written only
// after its NAR is stored and after the narinfos of all its references
// exist, so an interrupted push never publishes a path a client cannot
// fetch, and the next push completes the job.
//
// A push trusts nothing it finds in the cache that it cannot prove is its
// own (see cachefmt.ProofKey): a narinfo counts as present only if it is
// ours for the path and its NAR is in place, and a NAR name that holds
// other bytes is routed around (the NAR goes under its file hash's name).
// Whatever else sits under a path's narinfo name is replaced, conditioned
// on the version inspected, so concurrent honest pushers never undo each
// other.
package push

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nix-community/go-nix/pkg/narinfo"
	"github.com/nix-community/go-nix/pkg/narinfo/signature"
	"github.com/nix-community/go-nix/pkg/nixhash"

	"github.com/socioprophet/sourceos/internal/blob"
	"github.com/socioprophet/sourceos/internal/nixcache/cachefmt"
	"github.com/socioprophet/sourceos/internal/nixcache/internal/work"
	"github.com/socioprophet/sourceos/internal/nixcache/lease"
	"github.com/socioprophet/sourceos/internal/nixstore"
)

// Error reports the paths a push could not publish.
type Error struct {
	Failed int
	Errors []string
}

func (e *Error) Error() string {
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
// flake installables that are already built) and records a root naming
// them (see Options.Root).
func Push(ctx context.Context, o Options, installables []string) (Summary, error) {
	if len(installables) == 0 {
		return Summary{}, errors.New("cache push: no store paths or installables given")
	}
	if o.Runner == nil {
		return Summary{}, errors.New("cache push: no command runner")
	}
	// The cache side (nix-cache-info, the presence listing) does not depend
	// on the closure: it runs while nix path-info does.
	s, err := Open(ctx, o)
	if err != nil {
		return Summary{}, err
	}
	defer s.Abandon()
	infos, err := nixstore.Query(ctx, o.Runner, installables...)
	if err != nil {
		return Summary{}, fmt.Errorf("cache push: %w", err)
	}
	s.Add(ctx, infos)
	s.pre.stop() // presence is decided: a listing still under way is of no more use
	return s.Close(ctx, tops(infos, installables))
}

// tops is the closure's top-level paths: the installables that are store
// paths, else the paths nothing else in the closure refers to.
func tops(infos []nixstore.PathInfo, installables []string) []string {
	var out []string
	for _, in := range installables {
		if nixstore.ValidatePath(in) == nil {
			out = append(out, in)
		}
	}
	if len(out) == len(installables) {
		return out
	}
	return Maximal(infos)
}

// Maximal returns the paths of infos that no other path of infos refers to.
func Maximal(infos []nixstore.PathInfo) []string {
	referred := map[string]bool{}
	for _, pi := range infos {
		for _, r := range pi.References {
			if r != pi.Path {
				referred[r] = true
			}
		}
	}
	var out []string
	for _, pi := range infos {
		if !referred[pi.Path] {
			out = append(out, pi.Path)
		}
	}
	return out
}

// PushPaths publishes infos (a closure: every reference must be in infos or
// already in the cache) and records a root naming its top-level paths.
func PushPaths(ctx context.Context, o Options, infos []nixstore.PathInfo) (Summary, error) {
	s, err := Open(ctx, o)
	if err != nil {
		return Summary{}, err
	}
	defer s.Abandon()
	s.Add(ctx, infos)
	s.pre.stop() // presence is decided: a listing still under way is of no more use
	return s.Close(ctx, Maximal(infos))
}

// pusher is what every push of a session shares: the store, the keys and
// the limiter.
type pusher struct {
	o     Options
	store blob.Store
	codec cachefmt.Codec
	sk    signature.SecretKey
	pk    signature.PublicKey // sk's public half: what "ours" means
	// proving: the store keeps checksums and metadata, so narinfos carry
	// push proofs and presence needs no reads (see cachefmt.ProofKey).
	proving bool
	// syncs: the store makes Deferred writes durable with blob.Sync (a
	// directory). A push writes everything Deferred, in the order of the
	// closure invariant, and syncs once at the end: as nix copy (which
	// does not sync at all), a power failure in the middle of a push to
	// a directory may lose written objects, and the next push publishes
	// again what does not prove present (a narinfo that does not parse, a
	// NAR of the wrong size).
	syncs bool
	lim   *limiter
	// meta bounds the narinfo writes in flight; they do not wait behind
	// NAR uploads, so the chain of references is never queued.
	meta chan struct{}
	ups  *cachefmt.Upstreams
	narB atomic.Int64
	upB  atomic.Int64
	// clock reads the store's clock, for the GC lease (guard.go).
	clock *lease.Clock
}

func newPusher(ctx context.Context, o Options) (*pusher, error) {
	c, err := o.check()
	if err != nil {
		return nil, err
	}
	p := &pusher{o: o, codec: c, sk: *o.SecretKey, pk: o.SecretKey.ToPublicKey(), lim: newLimiter(o.Jobs, o.Now, o.ObserveLimit),
		meta: make(chan struct{}, o.Jobs)}
	if p.store, err = o.Open(ctx, p.lim); err != nil {
		return nil, fmt.Errorf("cache push: %w", err)
	}
	p.proving = cachefmt.Proving(p.store)
	_, p.syncs = p.store.(blob.Syncer)
	p.clock = lease.NewClock(p.store, o.Now)
	return p, nil
}

func (p *pusher) writeCacheInfo(ctx context.Context) error {
	err := p.store.Put(ctx, cachefmt.CacheInfoKey, strings.NewReader(cachefmt.CacheInfo),
		blob.PutOptions{CreateOnly: true, ContentType: cachefmt.CacheInfoType})
	if err != nil && !errors.Is(err, blob.ErrExists) {
		return fmt.Errorf("cache push: %w", err)
	}
	return nil
}

// lookup describes the object key, or says it is not there.
type lookup func(ctx context.Context, key string) (blob.Info, bool)

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
	info, ok := look(ctx, cachefmt.NarinfoKey(pi.Path))
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
		proof, err := cachefmt.CheckProofWith(p.pk, &p.sk, info)
		if err != nil {
			return false
		}
		n, ok := look(ctx, proof.NAR.Key)
		return ok && proof.NAR.Matches(n)
	}
	body, ni, err := cachefmt.ReadNarinfo(ctx, p.store, info.Key)
	if err != nil || ni.StorePath != pi.Path || !(p.wouldWrite(pi, ni, body) || cachefmt.Verifies(ni, p.pk)) {
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
	f := cachefmt.NarFile{URL: ni.URL, FileHash: ni.FileHash.Digest(), FileSize: ni.FileSize}
	want, err := cachefmt.BuildNarInfo(pi, ni.Compression, f, p.sk)
	return err == nil && want.String() == string(body)
}

// refHashes is the hash parts of pi's references.
func refHashes(pi nixstore.PathInfo) []string {
	out := make([]string, len(pi.References))
	for i, r := range pi.References {
		out[i] = nixstore.HashPart(r)
	}
	return out
}

// errRaced means another pusher published the narinfo first.
var errRaced = errors.New("narinfo published concurrently")

// publish writes n's narinfo, with its push proof where the store keeps
// them: create-only, or replacing the unproven version found (n.gen). When
// the name changed meanwhile (another pusher, or a planted object), the
// path is judged again: provably there is a race lost (errRaced), anything
// else is replaced, conditioned on the version just inspected, so two
// honest pushers never overwrite each other's narinfo.
func (p *pusher) publish(ctx context.Context, n *node, st stored) error {
	ni, err := cachefmt.BuildNarInfo(n.pi, p.codec.Name, st.file(), p.sk)
	if err != nil {
		return err
	}
	body := []byte(ni.String())
	key := cachefmt.NarinfoKey(n.pi.Path)
	opt := blob.PutOptions{ContentType: cachefmt.NarinfoType, SizeHint: int64(len(body)), Deferred: p.syncs, Unbuffered: true}
	if p.proving {
		if opt.Metadata, err = cachefmt.MakeProof(p.sk, key, body, st.ref(), refHashes(n.pi)); err != nil {
			return err
		}
	}
	gen := n.gen
	for range maxPublishRounds {
		opt.CreateOnly, opt.IfGeneration = gen == 0, gen
		err := p.retry(ctx, func() error {
			t0 := time.Now()
			err := p.store.Put(ctx, key, bytes.NewReader(body), opt)
			if err == nil {
				p.lim.Latency(time.Since(t0))
			}
			return err
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

// retry runs fn while it fails transiently, as often as the retry policy
// allows, telling the limiter and backing off (jittered, or as long as
// the server asked) between attempts. The store does not retry the
// unbuffered writes of a push itself.
func (p *pusher) retry(ctx context.Context, fn func() error) error {
	var err error
	for attempt := range p.o.Retry.Attempts() {
		if attempt > 0 {
			p.lim.Throttled()
			if werr := work.Sleep(ctx, p.o.Retry.Backoff(attempt, err)); werr != nil {
				return werr
			}
		}
		if err = fn(); err == nil || !blob.Transient(err) {
			return err
		}
	}
	return err
}
