package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/socioprophet/sourceos/internal/catalog"
	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/nixcache"
)

// Steps returns the ordered steps of a build of req's artifact.
func Steps(req Request) []Step {
	if req.Untrusted {
		return untrustedSteps(req)
	}
	steps := []Step{
		preflightNix{}, // cheap checks before the long build
		preflightSign{},
		preflightUpload{},
	}
	if req.Instance.SystemAttr() != "" {
		steps = append(steps, nixBuild{output: outSystem}) // the closure the cache and the SBOM need
	}
	rebuild := &rebuildStep{} // SOURCEOS_REBUILD_CHECK: build the image again, compare
	steps = append(steps, nixBuild{output: outImage}, rebuild, copyStep(req.Kind()))
	return append(steps,
		closure{},                    // runtime closure of everything built
		attestStep{rebuild: rebuild}, // signature and provenance sidecars, the rebuild check's outcome in them
		uploadStep{},                 // artifacts and sidecars to GCS_PREFIX
		cacheStep{},                  // warm the Nix cache, best effort unless strict
	)
}

// untrustedSteps build user-supplied Nix code: only in the sandbox, and
// without signing or pushing to the cache (no key is in this process): the
// image and its build record are what a trusted step signs.
func untrustedSteps(req Request) []Step {
	return []Step{
		preflightNix{},
		preflightSandbox{}, // no builder outside Nix's sandbox
		preflightUpload{},
		nixBuild{output: outSystem},
		nixBuild{output: outImage},
		copyStep(req.Kind()),
		closure{},
		recordStep{}, // what the trusted signer needs besides the image
		uploadStep{},
	}
}

// copyStep copies an artifact of kind out of the store into OUT.
func copyStep(kind catalog.Kind) Step {
	switch kind {
	case catalog.Netboot:
		return copyNetboot{}
	case catalog.ISO:
		return copyISO{}
	}
	return copyDisk{kind: kind}
}

// ErrKeysInUntrustedBuild means a custom build was started with a signing
// or cache key configured.
var ErrKeysInUntrustedBuild = errors.New("a custom build runs user-supplied Nix code and must not hold keys")

// refuseKeys fails when any secret is configured: a process that builds
// user code never holds one, whatever the sandbox promises.
func refuseKeys(cfg *config.Config) error {
	set := cfg.SecretsSet()
	if len(set) == 0 {
		return nil
	}
	return fmt.Errorf("%w: unset %s (and their _FILE forms) for build:custom; sign the result on a trusted machine (mage gcp:attest, or mage sign)", ErrKeysInUntrustedBuild, strings.Join(set, ", "))
}

// Edition builds the artifact of kind TARGET that the catalog lists for an
// edition on ARCH.
func Edition(ctx context.Context, d Deps, cat *catalog.Catalog, edition string) (*Summary, error) {
	in, err := cat.ForEdition(edition, catalog.Kind(d.Cfg.Target), d.Cfg.Arch)
	if err != nil {
		return nil, err
	}
	return Build(ctx, d, in)
}

// ArtifactByID builds the catalog's artifact with that id on ARCH.
func ArtifactByID(ctx context.Context, d Deps, cat *catalog.Catalog, id string) (*Summary, error) {
	in, err := cat.ByID(id, d.Cfg.Arch)
	if err != nil {
		return nil, err
	}
	return Build(ctx, d, in)
}

// Build builds one instance of the catalog from SOURCEOS_FLAKE.
func Build(ctx context.Context, d Deps, in catalog.Instance) (*Summary, error) {
	req := Request{Instance: in, Flake: catalog.FlakeRef(d.Cfg.Flake), Hostname: d.Cfg.Hostname}
	if req.Hostname == "" {
		req.Hostname = in.Hostname()
	}
	return runAndSummarise(ctx, d, req)
}

// Summary is the final JSON line of a build: every file and where it went.
type Summary struct {
	Artifact  string            `json:"artifact"`
	Edition   string            `json:"edition,omitempty"`
	Arch      string            `json:"arch"`
	Target    string            `json:"target"`
	Version   string            `json:"version"`
	BuildID   string            `json:"buildId,omitempty"`
	Outputs   map[string]string `json:"storePaths"`
	Artifacts []*Artifact       `json:"artifacts"`
	Signed    bool              `json:"signed"`
	Closure   int               `json:"closurePaths"`
	Cache     *nixcache.Summary `json:"cache,omitempty"`
	Notes     []string          `json:"notes,omitempty"`
	Seconds   float64           `json:"seconds"`
}

func runAndSummarise(ctx context.Context, d Deps, req Request) (*Summary, error) {
	d = d.withDefaults()
	st, err := Run(ctx, d, req, Steps(req))
	if err != nil {
		return nil, err
	}
	return &Summary{Artifact: req.Instance.ID(), Edition: req.Edition(), Arch: req.Arch(), Target: string(req.Kind()),
		Version: d.Cfg.Version, BuildID: d.Cfg.BuildID, Outputs: st.Outputs, Artifacts: st.Artifacts, Signed: st.Signed,
		Closure: len(st.Closure), Cache: st.Cache, Notes: st.Notes,
		Seconds: d.Now().Sub(st.Started).Round(time.Millisecond).Seconds()}, nil
}

// Print writes the summary as one JSON line.
func (s *Summary) Print(w io.Writer) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
