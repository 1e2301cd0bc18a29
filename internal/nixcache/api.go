package nixcache

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/socioprophet/sourceos/internal/nixcache/audit"
	"github.com/socioprophet/sourceos/internal/nixcache/cachefmt"
	"github.com/socioprophet/sourceos/internal/nixcache/gc"
	"github.com/socioprophet/sourceos/internal/nixcache/push"
	"github.com/socioprophet/sourceos/internal/nixcache/watch"
	"github.com/socioprophet/sourceos/internal/nixstore"
)

// The subsystems' types, as callers of this package name them.
type (
	// Summary is the result of a push.
	Summary = push.Summary
	// Outcome is what happened to one path of a push.
	Outcome = push.Outcome
	// Progress receives the events of a push.
	Progress = push.Progress
	// Reporter is a Progress writing to a terminal or a log.
	Reporter = push.Reporter
	// Session is a push that takes closures as they come.
	Session = push.Session
	// PushError reports the paths a push could not publish.
	PushError = push.Error
	// MismatchError says a path's NAR does not match the store's record.
	MismatchError = push.MismatchError
	// Watcher pushes paths while Nix builds them.
	Watcher = watch.Watcher
	// WatchOptions tune a watcher.
	WatchOptions = watch.Options
	// HookSupport says whether Nix runs a post-build hook we pass.
	HookSupport = watch.HookSupport
	// Identity is who runs Nix.
	Identity = watch.Identity
	// GCSummary is what a GC found and did.
	GCSummary = gc.Summary
	// Report is the result of an audit.
	Report = audit.Report
	// Problem is one defect of a cache.
	Problem = audit.Problem
	// VerifyError is returned when an audit found problems.
	VerifyError = audit.Error
	// Root names what one push put in the cache.
	Root = cachefmt.Root
)

// Outcomes of a path.
const (
	Pushed   = push.Pushed
	Present  = push.Present
	Upstream = push.Upstream
	Failed   = push.Failed
)

// CacheInfo is the nix-cache-info written at the cache root.
const CacheInfo = cachefmt.CacheInfo

var (
	// ErrGCRunning means another GC holds the cache.
	ErrGCRunning = gc.ErrRunning
	// ErrSpoolLine means the watcher skipped spool lines longer than any
	// store path.
	ErrSpoolLine = watch.ErrSpoolLine
	// RootNameRe is what a root name may be.
	RootNameRe = cachefmt.RootNameRe
)

// RootName makes a valid root name of parts.
func RootName(parts ...string) string { return cachefmt.RootName(parts...) }

// ParseRoot reads a root strictly and checks its signature.
var ParseRoot = cachefmt.ParseRoot

// ParseNarInfo parses and checks a narinfo.
var ParseNarInfo = cachefmt.ParseNarInfo

// Maximal returns the paths of infos that no other path of infos refers to.
func Maximal(infos []nixstore.PathInfo) []string { return push.Maximal(infos) }

// CurrentIdentity describes this process's user.
func CurrentIdentity() Identity { return watch.CurrentIdentity() }

// DetectHookSupport asks Nix for its settings and decides for id.
var DetectHookSupport = watch.DetectHookSupport

// WatchedCmd is the command that runs argv with hook as Nix's
// post-build-hook.
var WatchedCmd = watch.WatchedCmd

// OutputsArgs is the argv (after "nix-store") that prints the output
// paths of derivations.
var OutputsArgs = watch.OutputsArgs

// Push publishes the runtime closure of installables (store paths, or
// flake installables that are already built) and records a root naming
// them (see Options.Root). Unconfigured, it returns a *NotConfiguredError
// naming what to set.
func Push(ctx context.Context, o Options, installables []string) (Summary, error) {
	po, err := o.forPush()
	if err != nil {
		return Summary{}, err
	}
	if o.Runner == nil {
		return Summary{}, errors.New("cache push: no command runner")
	}
	return push.Push(ctx, po, installables)
}

// PushPaths publishes infos (a closure: every reference must be in infos or
// already in the cache) and records a root naming its top-level paths.
func PushPaths(ctx context.Context, o Options, infos []nixstore.PathInfo) (Summary, error) {
	po, err := o.forPush()
	if err != nil {
		return Summary{}, err
	}
	return push.PushPaths(ctx, po, infos)
}

// Open starts a push session: it writes nix-cache-info and starts listing
// the cache for presence, while the caller finds out what to push.
func Open(ctx context.Context, o Options) (*Session, error) {
	po, err := o.forPush()
	if err != nil {
		return nil, err
	}
	return push.Open(ctx, po)
}

// forPush checks that o can push and returns the push's options.
func (o Options) forPush() (push.Options, error) {
	o = o.withDefaults()
	if err := o.checkPush(); err != nil {
		return push.Options{}, err
	}
	return o.pushOptions()
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

// StartWatch opens a push session and writes the post-build hook and its
// spool into a new private directory.
func StartWatch(ctx context.Context, o Options, wo WatchOptions) (*Watcher, error) {
	if o.Runner == nil {
		return nil, errors.New("cache watch: no command runner")
	}
	po, err := o.forPush()
	if err != nil {
		return nil, err
	}
	return watch.Start(ctx, po, wo)
}

// RunWatched runs argv (any command that runs Nix builds) with a watcher:
// every path Nix builds is pushed as soon as it is built; when the command
// succeeds, a root names the built paths nothing else built refers to.
// When the command fails, what it built is still pushed, without a root.
func RunWatched(ctx context.Context, o Options, argv []string, stdout, stderr io.Writer) (Summary, error) {
	if len(argv) == 0 {
		return Summary{}, errors.New("cache watch: no command given")
	}
	po, err := o.forPush()
	if err != nil {
		return Summary{}, err
	}
	return watch.Run(ctx, po, argv, stdout, stderr)
}

// GC deletes what no root keeps (see package gc).
func GC(ctx context.Context, o Options) (GCSummary, error) {
	o = o.withDefaults()
	pk, err := o.publicKey()
	if err != nil {
		return GCSummary{}, err
	}
	store, err := o.open(ctx, nil)
	if err != nil {
		return GCSummary{}, fmt.Errorf("cache gc: %w", err)
	}
	return gc.Run(ctx, gc.Options{Store: store, PubKey: pk, Log: o.Log, Now: o.Now, Window: testWindow,
		Policy: o.GC, AfterPlan: testAfterPlan, BeforeDelete: testBeforeDelete})
}

// AdoptReport is what Adopt did.
type AdoptReport = audit.AdoptReport

// Adopt makes a cache written with the cache's key by another pipeline
// (nix copy and an upload: no push proofs, no roots) ours without
// uploading its NARs: each narinfo is checked deeply, its push proof
// recorded, and a root (o.Root.Name, default "adopted"; pinned with
// o.Root.Pin) names what was adopted; see package audit.
func Adopt(ctx context.Context, o Options) (AdoptReport, error) {
	o = o.withDefaults()
	if !o.SecretKey.IsSet() {
		return AdoptReport{}, &NotConfiguredError{Missing: []string{"NIX_CACHE_SECRET_KEY"}}
	}
	sk, err := o.secretKey()
	if err != nil {
		return AdoptReport{}, err
	}
	store, err := o.open(ctx, nil)
	if err != nil {
		return AdoptReport{}, fmt.Errorf("cache adopt: %w", err)
	}
	return audit.Adopt(ctx, audit.AdoptOptions{Store: store, SecretKey: &sk, RootName: o.Root.Name, Pin: o.Root.Pin,
		BuildID: o.Root.BuildID, Now: o.Now})
}

// Verify audits the whole cache (deep: every NAR downloaded and checked
// too); see package audit. With the secret key, a clean run records the
// watermark VerifyIncremental starts from.
func Verify(ctx context.Context, o Options, deep bool) (Report, error) {
	return verify(ctx, o, deep, false)
}

// VerifyIncremental audits what was written since the last clean run (the
// whole cache when no watermark verifies); see package audit.
func VerifyIncremental(ctx context.Context, o Options) (Report, error) {
	return verify(ctx, o, false, true)
}

func verify(ctx context.Context, o Options, deep, incremental bool) (Report, error) {
	o = o.withDefaults()
	pk, err := o.publicKey()
	if err != nil {
		return Report{}, err
	}
	store, err := o.open(ctx, nil)
	if err != nil {
		return Report{}, fmt.Errorf("cache verify: %w", err)
	}
	ao := audit.Options{Store: store, PubKey: pk, Deep: deep, Incremental: incremental, Upstreams: o.Upstreams,
		UpstreamTimeout: o.UpstreamTimeout, HTTPClient: o.HTTPClient, Jobs: o.Jobs, Log: o.Log, Now: o.Now}
	if o.SecretKey.IsSet() {
		sk, err := o.secretKey()
		if err != nil {
			return Report{}, err
		}
		ao.SecretKey = &sk
	}
	return audit.Run(ctx, ao)
}
