package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/socioprophet/sourceos/editions/custom"
	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/nixcache"
	"github.com/socioprophet/sourceos/internal/spec"
)

// Steps returns the ordered steps of a build of req.Target.
func Steps(req Request) []Step {
	if req.Untrusted {
		return untrustedSteps()
	}
	steps := []Step{
		preflightNix{}, // cheap checks before the long build
		preflightSign{},
		preflightUpload{},
		nixBuild{kind: "system"}, // the closure the cache and the SBOM need
	}
	rebuild := &rebuildStep{kind: "iso"} // SOURCEOS_REBUILD_CHECK: build the image again, compare
	switch req.Target {
	case "netboot":
		rebuild.kind = "netboot"
		steps = append(steps, nixBuild{kind: "netboot"}, rebuild, copyNetboot{})
	default:
		steps = append(steps, nixBuild{kind: "iso"}, rebuild, copyISO{})
	}
	return append(steps,
		closure{},                  // runtime closure of everything built
		signStep{rebuild: rebuild}, // signature and provenance sidecars, the rebuild check's outcome in them
		uploadStep{},               // artifacts and sidecars to GCS_PREFIX
		cacheStep{},                // warm the Nix cache, best effort unless strict
	)
}

// untrustedSteps build user-supplied Nix code: only in the sandbox, and
// without signing or pushing to the cache (no key is in this process): the
// image and its build record are what a trusted step signs.
func untrustedSteps() []Step {
	return []Step{
		preflightNix{},
		preflightSandbox{}, // no builder outside Nix's sandbox
		preflightUpload{},
		nixBuild{kind: "system"},
		nixBuild{kind: "iso"},
		copyISO{},
		closure{},
		recordStep{}, // what the trusted signer needs besides the image
		uploadStep{},
	}
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
	return fmt.Errorf("%w: unset %s (and their _FILE forms) for build:custom; sign the result on a trusted machine (mage gcp:sign, or mage sign)", ErrKeysInUntrustedBuild, strings.Join(set, ", "))
}

// Edition builds one edition as configured (ARCH, TARGET, SOURCEOS_FLAKE).
func Edition(ctx context.Context, d Deps, edition string) (*Summary, error) {
	req := Request{Edition: edition, Arch: d.Cfg.Arch, Target: d.Cfg.Target, Flake: FlakeRef(d.Cfg.Flake),
		Hostname: d.Cfg.Hostname}
	if req.Hostname == "" {
		req.Hostname = "sourceos-" + edition
	}
	return runAndSummarise(ctx, d, req)
}

// Custom builds the image a self-serve spec asks for. The spec is validated
// strictly, written as JSON beside the fixed custom flake (never spliced into
// Nix code), and built with the sourceos input overridden to SOURCEOS_FLAKE
// and import-from-derivation off.
func Custom(ctx context.Context, d Deps, specPath string) (*Summary, error) {
	if err := refuseKeys(d.Cfg); err != nil {
		return nil, err
	}
	f, err := os.Open(specPath)
	if err != nil {
		return nil, fmt.Errorf("build spec: %w", err)
	}
	defer f.Close()
	sp, err := spec.Parse(f, spec.Options{AllowModuleSnippet: d.Cfg.AllowModuleSnippet})
	if err != nil {
		return nil, err
	}
	flake := FlakeRef(d.Cfg.Flake)
	template, err := CustomTemplate(flake)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "sourceos-custom-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := composeDir(ctx, d.Run, dir, sp, template); err != nil {
		return nil, err
	}
	canon, err := sp.Canonical()
	if err != nil {
		return nil, err
	}
	req := Request{Edition: sp.Edition, Arch: sp.Arch, Target: "iso", Flake: "path:" + dir,
		NixArgs:  []string{"--override-input", "sourceos", flake, "--option", "allow-import-from-derivation", "false"},
		Hostname: sp.Hostname, Untrusted: true, Spec: canon}
	return runAndSummarise(ctx, d, req)
}

// composeDir writes the per-build flake and checks the snippet, if any, with
// the real Nix parser before anything is evaluated.
func composeDir(ctx context.Context, run execx.Runner, dir string, sp *spec.Spec, template []byte) error {
	files, err := spec.Files(sp, template)
	if err != nil {
		return err
	}
	if err := spec.WriteDir(dir, files); err != nil {
		return err
	}
	if sp.ModuleSnippet == "" {
		return nil
	}
	res, err := run.Run(ctx, execx.Cmd{Name: "nix-instantiate", Args: []string{"--parse", filepath.Join(dir, spec.SnippetFile)}})
	if err != nil {
		return fmt.Errorf("moduleSnippet does not parse: %w", err)
	}
	if v := spec.CheckSnippetAST(string(res.Stdout)); len(v) > 0 {
		return &spec.SnippetError{Violations: v}
	}
	return nil
}

// FlakeRef makes a local directory reference absolute and leaves every
// other reference as it is. A bare directory stays bare, so Nix treats a Git
// checkout as git+file (tracked files only) and does not copy OUT's images
// into the store with the source; `path:` references are kept as given.
func FlakeRef(flake string) string {
	if strings.HasPrefix(flake, "path:") || strings.Contains(flake, ":") {
		return flake
	}
	if abs, err := filepath.Abs(flake); err == nil {
		return abs
	}
	return flake
}

// localPath reports whether flake names a local directory, and which.
func localPath(flake string) (string, bool) {
	if rest, ok := strings.CutPrefix(flake, "path:"); ok {
		p, _, _ := strings.Cut(rest, "?")
		return p, true
	}
	if strings.Contains(flake, ":") {
		return "", false
	}
	return flake, true
}

// FlakeLock reads the flake.lock of a local flake reference; an error
// when the flake is remote or has no lock.
func FlakeLock(flake string) ([]byte, error) {
	p, ok := localPath(flake)
	if !ok {
		return nil, fmt.Errorf("%s: not a local flake", flake)
	}
	return os.ReadFile(filepath.Join(p, "flake.lock"))
}

// CustomTemplate returns the fixed flake of custom builds: the
// editions/custom/flake.nix of the flake being built when that is a local
// directory (so a checkout under test builds with its own), else the copy
// compiled into this binary (a build VM has no checkout).
func CustomTemplate(flake string) ([]byte, error) {
	p, ok := localPath(flake)
	if !ok {
		return custom.Flake, nil
	}
	b, err := os.ReadFile(filepath.Join(p, "editions", "custom", "flake.nix"))
	if err != nil {
		return nil, fmt.Errorf("custom flake template: %w", err)
	}
	return b, nil
}

// Summary is the final JSON line of a build: every file and where it went.
type Summary struct {
	Edition   string            `json:"edition"`
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
	return &Summary{Edition: req.Edition, Arch: req.Arch, Target: req.Target, Version: d.Cfg.Version,
		BuildID: d.Cfg.BuildID, Outputs: st.Outputs, Artifacts: st.Artifacts, Signed: st.Signed,
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
