package attest

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/socioprophet/sourceos/internal/config"
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
	Log                 *slog.Logger
}

// FilesFromConfig is what `mage sign <artifact>` signs with: TARGET, the
// signing key, GCS_PREFIX and the build facts of the configuration.
func FilesFromConfig(cfg *config.Config, artifact string, now time.Time, log *slog.Logger) (FilesOptions, error) {
	kind, err := sidecar.KindOf(cfg.Target)
	if err != nil {
		return FilesOptions{}, err
	}
	return FilesOptions{Artifact: artifact, Kind: kind,
		Build:     BuildInfoFromConfig(cfg, BuildInfoOptions{FinishedOn: now}),
		SecretKey: cfg.SignSecretKey, Password: cfg.SignPassword,
		RequireSignature: cfg.RequireSignature, GCSPrefix: cfg.GCSPrefix, Log: log}, nil
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
	return Sign(ctx, SignOptions{
		Kind: o.Kind, Artifacts: arts, Build: o.Build,
		SecretKey: o.SecretKey, Password: o.Password,
		RequireSignature: o.RequireSignature, GCSPrefix: o.GCSPrefix, Log: o.Log,
	})
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
