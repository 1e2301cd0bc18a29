package image

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/socioprophet/sourceos/internal/attest"
	"github.com/socioprophet/sourceos/internal/provenance"
	"github.com/socioprophet/sourceos/internal/sidecar"
)

// attestStep signs the artifacts and writes their provenance beside them
// (internal/attest),
// reusing the digests computed while copying them out of the store. The
// rebuild step's outcome, when it ran, is recorded in the provenance.
type attestStep struct{ rebuild *rebuildStep }

func (attestStep) String() string { return "attest: signature and provenance" }

func (st attestStep) Run(ctx context.Context, s *State) error {
	arts := s.Artifacts // the image, or the netboot set and its manifest
	opts := attest.Options{
		Kind: s.Req.Kind(), Build: s.buildInfo(st.rebuildCheck()), Closure: attest.Closure(s.Closure),
		SecretKey: s.Cfg.SignSecretKey, Password: s.Cfg.SignPassword,
		RequireSignature: s.Cfg.RequireSignature, GCSPrefix: s.Cfg.GCSPrefix,
		Now: s.Now, Log: s.Log,
	}
	for _, a := range arts {
		d := a.Digests
		opts.Artifacts = append(opts.Artifacts, sidecar.Artifact{Path: a.Path, Digests: &d})
	}
	res, err := attest.Write(ctx, opts)
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
func (st attestStep) rebuildCheck() *provenance.RebuildCheck {
	if st.rebuild == nil {
		return nil
	}
	return st.rebuild.result
}

// buildInfo is the provenance of this build, with the rebuild check's
// outcome when there is one.
func (s *State) buildInfo(rebuild *provenance.RebuildCheck) provenance.BuildInfo {
	return attest.BuildInfo(s.Cfg, attest.Facts{Instance: s.Req.Instance, Hostname: s.Req.Hostname, Custom: s.Req.Custom,
		StartedOn: s.Started, FinishedOn: s.Now(), Rebuild: rebuild})
}
