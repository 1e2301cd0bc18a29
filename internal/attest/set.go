package attest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/socioprophet/sourceos/internal/catalog"
	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/execx"
	"github.com/socioprophet/sourceos/internal/nixstore"
	"github.com/socioprophet/sourceos/internal/provenance"
	"github.com/socioprophet/sourceos/internal/sidecar"
)

// FilesOptions are what `mage sign <artifact>` works from.
type FilesOptions struct {
	// Artifact is the file to sign, or a netboot-manifest.json, which
	// stands for itself and every file it lists.
	Artifact string
	Kind     sidecar.Kind
	Build    provenance.BuildInfo
	// SecretKey and Password: unset means unsigned output.
	SecretKey, Password config.Secret
	RequireSignature    bool
	GCSPrefix           string
	// StorePaths are the image's store paths or installables: the SBOM
	// lists their runtime closure, queried with Run (`nix path-info
	// --recursive --json`; secrets stripped from its environment when
	// Run is nil). Empty: no SBOM.
	StorePaths []string
	Run        execx.Runner
	Log        *slog.Logger
}

// FilesFromConfig is what `mage sign <artifact>` signs with: the
// catalog's artifact of that file name (else the one EDITION, TARGET and
// ARCH name), the signing key, GCS_PREFIX and the build facts of the
// configuration.
func FilesFromConfig(cfg *config.Config, cat *catalog.Catalog, artifact string, now time.Time, log *slog.Logger) (FilesOptions, error) {
	in, err := instanceOf(cat, cfg, artifact)
	if err != nil {
		return FilesOptions{}, err
	}
	return FilesOptions{Artifact: artifact, Kind: in.Kind(),
		Build:     BuildInfo(cfg, Facts{Instance: in, Hostname: cfg.Hostname, FinishedOn: now}),
		SecretKey: cfg.SignSecretKey, Password: cfg.SignPassword,
		RequireSignature: cfg.RequireSignature, GCSPrefix: cfg.GCSPrefix,
		StorePaths: cfg.StorePaths, Log: log}, nil
}

// ErrCustomName refuses to sign a custom build's file as a release.
var ErrCustomName = errors.New("is named as a custom build: custom builds are signed by their lane's signer (mage gcp:attest), never as a release")

// instanceOf is the catalog's artifact a file is: the instance of that
// file name on any architecture, else (a netboot manifest, a renamed
// file) the one EDITION, TARGET and ARCH name.
func instanceOf(cat *catalog.Catalog, cfg *config.Config, artifact string) (catalog.Instance, error) {
	name := filepath.Base(artifact)
	if catalog.IsCustomName(name) {
		return catalog.Instance{}, fmt.Errorf("%s %w", name, ErrCustomName)
	}
	for _, in := range cat.Instances() {
		if in.File() == name {
			return in, nil
		}
	}
	if cfg.Edition == "" {
		return catalog.Instance{}, fmt.Errorf("%s is no artifact file of the catalog: set EDITION (with TARGET and ARCH) to say what it is", name)
	}
	return cat.ForEdition(cfg.Edition, catalog.Kind(cfg.Target), cfg.Arch)
}

// Files is `mage sign <artifact>`: it signs one artifact or, given a
// netboot-manifest.json, the manifest and every file it lists, and writes
// their provenance beside them.
func Files(ctx context.Context, o FilesOptions) (*Result, error) {
	paths, err := artifactSet(o.Kind, o.Artifact)
	if err != nil {
		return nil, err
	}
	arts := make([]sidecar.Artifact, 0, len(paths))
	for _, p := range paths {
		arts = append(arts, sidecar.Artifact{Path: p})
	}
	closure, err := closureOf(ctx, o)
	if err != nil {
		return nil, err
	}
	return Write(ctx, Options{
		Kind: o.Kind, Artifacts: arts, Build: o.Build, Closure: closure,
		SecretKey: o.SecretKey, Password: o.Password,
		RequireSignature: o.RequireSignature, GCSPrefix: o.GCSPrefix, Log: o.Log,
	})
}

// closureOf queries the runtime closure of o.StorePaths, for the SBOM of
// an ISO; without store paths it says, once, that no SBOM is written.
func closureOf(ctx context.Context, o FilesOptions) ([]provenance.StorePath, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch {
	case !sidecar.IsImage(o.Kind) && len(o.StorePaths) > 0:
		log.Warn("STORE_PATHS ignored: a netboot set has no SBOM")
		return nil, nil
	case !sidecar.IsImage(o.Kind):
		return nil, nil
	case len(o.StorePaths) == 0:
		log.Warn("no SBOM written: set STORE_PATHS to the image's store paths or installables to describe its Nix closure")
		return nil, nil
	}
	run := o.Run
	if run == nil {
		run = &execx.Exec{SecretNames: config.SecretNames()}
	}
	infos, err := nixstore.Query(ctx, run, o.StorePaths...)
	if err != nil {
		return nil, err
	}
	log.Info("SBOM of the Nix closure", "paths", len(infos), "of", strings.Join(o.StorePaths, " "))
	return Closure(infos), nil
}

// Closure is a closure as nixstore reports it, for the SBOM.
func Closure(infos []nixstore.PathInfo) []provenance.StorePath {
	out := make([]provenance.StorePath, 0, len(infos))
	for _, i := range infos {
		out = append(out, provenance.StorePath{Path: i.Path, NarHash: i.NarHash, NarSize: i.NarSize,
			References: i.References, Deriver: i.Deriver})
	}
	return out
}

// artifactSet is the files a `mage sign` argument stands for. A manifest
// that verify would refuse (a file outside its directory, listed twice,
// without a digest) is refused here too.
func artifactSet(kind sidecar.Kind, artifact string) ([]string, error) {
	if _, err := os.Stat(artifact); err != nil {
		return nil, err
	}
	if kind != sidecar.Netboot || filepath.Base(artifact) != sidecar.ManifestName {
		return []string{artifact}, nil
	}
	raw, err := sidecar.ReadLimited(artifact, sidecar.MaxManifestSize)
	if err != nil {
		return nil, err
	}
	m, err := sidecar.ParseManifest(raw)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(m.Files)+1)
	for _, f := range m.Files {
		out = append(out, filepath.Join(filepath.Dir(artifact), f.File))
	}
	return append(out, artifact), nil
}
