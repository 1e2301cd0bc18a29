// Package image is the main job: build an edition image (or a netboot set)
// with Nix, copy it out of the store while hashing it once, sign it and write
// its provenance, upload it, and warm the Nix cache — as an ordered list of
// small steps, each logged with a phase line, with a cheap preflight before
// the long `nix build`.
package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/socioprophet/sourceos/internal/catalog"
	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/digest"
	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/nixcache"
	"github.com/socioprophet/sourceos/internal/nixstore"
	"github.com/socioprophet/sourceos/internal/provenance"
)

// Deps are the collaborators of a build.
type Deps struct {
	Cfg *config.Config
	Run execx.Runner
	Log *slog.Logger
	// Stream receives the build log and phase lines (stderr).
	Stream io.Writer
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

func (d Deps) withDefaults() Deps {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Stream == nil {
		d.Stream = io.Discard
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return d
}

// Request says what to build.
type Request struct {
	// Instance is the catalog's artifact for one edition and arch.
	Instance catalog.Instance
	// Flake is the flake reference to build from.
	Flake string
	// NixArgs are extra arguments for nix build (custom builds override
	// the sourceos input and turn import-from-derivation off).
	NixArgs []string
	// Hostname is recorded in provenance.
	Hostname string
	// Untrusted marks a flake that holds user-supplied Nix code (a custom
	// build): it builds only in Nix's sandbox, with no key in reach, and
	// ends with an unsigned image and its build record for a trusted
	// step to sign (docs/threat-model.md).
	Untrusted bool
	// Custom describes a custom build (nil for a release): who asked,
	// which build, and the spec as received and as normalised.
	Custom *provenance.Custom
}

// Edition is the edition built ("" for an artifact of no edition).
func (r Request) Edition() string { return r.Instance.EditionName() }

// Arch is the architecture built.
func (r Request) Arch() string { return r.Instance.Arch }

// Kind is the kind of artifact built.
func (r Request) Kind() catalog.Kind { return r.Instance.Kind() }

// ArtifactKind says what an artifact in OUT is.
type ArtifactKind string

// The kinds of artifacts a build writes.
const (
	KindISO      ArtifactKind = "iso"      // the installer image
	KindQCOW2    ArtifactKind = "qcow2"    // a preinstalled disk image
	KindGCE      ArtifactKind = "gce"      // a Google Compute Engine image
	KindKernel   ArtifactKind = "kernel"   // netboot kernel
	KindInitrd   ArtifactKind = "initrd"   // netboot initrd
	KindIPXE     ArtifactKind = "ipxe"     // netboot iPXE script
	KindManifest ArtifactKind = "manifest" // netboot-manifest.json
	KindRecord   ArtifactKind = "record"   // the build record of an untrusted build
)

// Artifact is one file the build wrote to OUT.
type Artifact struct {
	Name    string         `json:"name"`
	Path    string         `json:"path"`
	Kind    ArtifactKind   `json:"kind"`
	Digests digest.Digests `json:"-"`
	SHA256  string         `json:"sha256"`
	Size    int64          `json:"size"`
	// Sidecars are the files written beside it (signature, provenance…).
	Sidecars []string `json:"sidecars,omitempty"`
	// URLs maps every uploaded file name to where it went.
	URLs map[string]string `json:"urls,omitempty"`
}

// State is what the steps of one build share.
type State struct {
	Deps
	Req     Request
	Out     string
	Started time.Time
	// Outputs maps "system" and "image" to the store paths built.
	Outputs map[string]string
	// Artifacts is the registry later steps select from.
	Artifacts []*Artifact
	// Closure is the runtime closure of the built outputs.
	Closure []nixstore.PathInfo
	Signed  bool
	// Cache is the cache push summary, when the cache step ran.
	Cache *nixcache.Summary
	// Notes are one-line remarks for the summary (skips and degradations).
	Notes []string
	// NixVersion is what `nix --version` said in the preflight.
	NixVersion string

	// watch pushes to the cache while the build runs (watch.go).
	watch *watchState
}

// Step is one stage of the pipeline.
type Step interface {
	String() string
	Run(ctx context.Context, s *State) error
}

// Skipper is implemented by steps that may not apply; a skip is logged.
type Skipper interface {
	Skip(s *State) (bool, string)
}

// Validate checks a request before anything runs.
func (r Request) Validate() error {
	var errs []error
	if r.Instance.Artifact == nil {
		errs = append(errs, errors.New("no artifact to build"))
	}
	if r.Flake == "" {
		errs = append(errs, errors.New("SOURCEOS_FLAKE is empty"))
	}
	return errors.Join(errs...)
}

// Run executes steps in order. A failing step stops the pipeline; artifacts
// written before a failure that happened ahead of the upload are removed, so
// OUT never holds a half-finished release.
func Run(ctx context.Context, d Deps, req Request, steps []Step) (*State, error) {
	d = d.withDefaults()
	if err := req.Validate(); err != nil {
		return nil, err
	}
	out, err := filepath.Abs(d.Cfg.Out)
	if err != nil {
		return nil, fmt.Errorf("OUT %q: %w", d.Cfg.Out, err)
	}
	s := &State{Deps: d, Req: req, Out: out, Started: d.Now(), Outputs: map[string]string{}}
	if stale := sweepPartials(out, s.Started); len(stale) > 0 {
		fmt.Fprintf(d.Stream, "==> removed %d partial files an interrupted run left in OUT: %s\n", len(stale), strings.Join(stale, " "))
	}
	for i, step := range steps {
		if sk, ok := step.(Skipper); ok {
			if skip, why := sk.Skip(s); skip {
				fmt.Fprintf(d.Stream, "==> [%d/%d] %s: skipped (%s)\n", i+1, len(steps), step, why)
				s.Notes = append(s.Notes, fmt.Sprintf("%s skipped: %s", step, why))
				continue
			}
		}
		fmt.Fprintf(d.Stream, "==> [%d/%d] %s\n", i+1, len(steps), step)
		t0 := d.Now()
		if err := step.Run(ctx, s); err != nil {
			drainFailed(ctx, s) // what Nix built before the failure goes to the cache (not after a cancellation: the push stops with the build)
			s.cleanup()
			return s, fmt.Errorf("%s: %w", step, err)
		}
		fmt.Fprintf(d.Stream, "    %s done in %s\n", step, d.Now().Sub(t0).Round(time.Millisecond))
	}
	return s, nil
}

// cleanup removes what this run wrote to OUT when it failed before upload.
func (s *State) cleanup() {
	for _, a := range s.Artifacts {
		if len(a.URLs) > 0 {
			continue
		}
		_ = os.Remove(a.Path)
		for _, sc := range a.Sidecars {
			_ = os.Remove(filepath.Join(s.Out, sc))
		}
	}
}

// Artifact returns the registered artifact of a kind, or nil.
func (s *State) Artifact(kind ArtifactKind) *Artifact {
	for _, a := range s.Artifacts {
		if a.Kind == kind {
			return a
		}
	}
	return nil
}
