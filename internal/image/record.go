package image

import (
	"context"
	"fmt"

	"github.com/socioprophet/sourceos/internal/buildrecord"
)

// recordStep writes the build record beside the image: what an untrusted
// build hands to the trusted step that signs (internal/buildrecord).
type recordStep struct{}

func (recordStep) String() string { return "write build record" }

func (recordStep) Run(ctx context.Context, s *State) error {
	iso := s.Artifact(KindISO)
	if iso == nil {
		return fmt.Errorf("build record: no image to describe")
	}
	rec := &buildrecord.Record{
		Artifact: iso.Name, Size: iso.Size, SHA256: iso.SHA256,
		Edition: s.Req.Edition, Arch: s.Req.Arch, Target: s.Req.Target, Hostname: s.Req.Hostname,
		Spec: s.Req.Spec, FlakeRef: s.Req.Flake, FlakeAttr: Attr(s.Req.Arch, s.Req.Edition, "iso"),
		StorePaths: s.Outputs, Closure: s.Closure, NixVersion: s.NixVersion,
		StartedOn: s.Started.UTC(), FinishedOn: s.Now().UTC(),
	}
	b, err := rec.Marshal()
	if err != nil {
		return err
	}
	a, err := writeOut(s.Out, iso.Name+buildrecord.Ext, KindRecord, b)
	if err != nil {
		return err
	}
	iso.Sidecars = append(iso.Sidecars, a.Name)
	fmt.Fprintf(s.Stream, "    %s (unsigned: sign it on a trusted machine)\n", a.Name)
	return nil
}
