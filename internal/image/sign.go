package image

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/socioprophet/sourceos/internal/attest"
	"github.com/socioprophet/sourceos/internal/provenance"
	"github.com/socioprophet/sourceos/internal/sidecar"
)

// signStep signs the artifacts and writes their provenance beside them,
// reusing the digests computed while copying them out of the store. The
// rebuild step's outcome, when it ran, is recorded in the provenance.
type signStep struct{ rebuild *rebuildStep }

func (signStep) String() string { return "sign and write provenance" }

func (st signStep) Run(ctx context.Context, s *State) error {
	kind := sidecar.ISO
	var arts []*Artifact
	if s.Req.Target == "netboot" {
		kind = sidecar.Netboot
		for _, k := range []ArtifactKind{KindKernel, KindInitrd, KindIPXE, KindManifest} {
			arts = append(arts, s.Artifact(k))
		}
	} else {
		arts = []*Artifact{s.Artifact(KindISO)}
	}
	opts := attest.SignOptions{
		Kind: kind, Build: s.buildInfo(st.rebuildCheck()), Closure: attest.Closure(s.Closure),
		SecretKey: s.Cfg.SignSecretKey, Password: s.Cfg.SignPassword,
		RequireSignature: s.Cfg.RequireSignature, GCSPrefix: s.Cfg.GCSPrefix,
		Now: s.Now, Log: s.Log,
	}
	for _, a := range arts {
		d := a.Digests
		opts.Artifacts = append(opts.Artifacts, sidecar.Artifact{Path: a.Path, Digests: &d})
	}
	res, err := attest.Sign(ctx, opts)
	if err != nil {
		return err
	}
	s.Signed = res.Signed
	for i, ar := range res.Artifacts {
		for _, sc := range ar.Sidecars {
			arts[i].Sidecars = append(arts[i].Sidecars, filepath.Base(sc))
		}
	}
	if res.Signed {
		fmt.Fprintf(s.Stream, "    signed with key %s\n", res.KeyID)
	} else {
		fmt.Fprintln(s.Stream, "    unsigned (no SOURCEOS_SIGN_SECRET_KEY): provenance written, OSImage says unsigned")
	}
	return nil
}

// rebuildCheck is the rebuild step's outcome, nil when it did not run.
func (st signStep) rebuildCheck() *provenance.RebuildCheck {
	if st.rebuild == nil {
		return nil
	}
	return st.rebuild.result
}

// buildInfo is the provenance of this build, with the rebuild check's
// outcome when there is one.
func (s *State) buildInfo(rebuild *provenance.RebuildCheck) provenance.BuildInfo {
	kind := "iso"
	if s.Req.Target == "netboot" {
		kind = "netboot"
	}
	info := provenance.BuildInfo{
		Edition: s.Req.Edition, Arch: s.Req.Arch, Target: s.Req.Target, Hostname: s.Req.Hostname,
		Version: s.Cfg.Version, Channel: s.Cfg.Channel,
		FlakeRef: s.Req.Flake, FlakeAttr: Attr(s.Req.Arch, s.Req.Edition, kind),
		SourceRepo: s.Cfg.SourceRepo, SourceRev: s.Cfg.SourceRev,
		BuildID: s.Cfg.BuildID, BuilderID: attest.LocalBuilderID,
		StartedOn: s.Started, FinishedOn: s.Now(), Rebuild: rebuild,
	}
	if lock, err := FlakeLock(s.Req.Flake); err == nil {
		info.FlakeLock = lock
	}
	return info
}
