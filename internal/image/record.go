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
	if len(s.Artifacts) == 0 {
		return fmt.Errorf("build record: no image to describe")
	}
	name := s.Req.Instance.File()
	rec := &buildrecord.Record{
		Artifact: name, Edition: s.Req.Edition(), Arch: s.Req.Arch(), Target: string(s.Req.Kind()), Hostname: s.Req.Hostname,
		FlakeRef: s.Req.Flake, FlakeAttr: s.Req.Instance.Attr(),
		StorePaths: s.Outputs, Closure: s.Closure, NixVersion: s.NixVersion,
		StartedOn: s.Started.UTC(), FinishedOn: s.Now().UTC(),
	}
	if c := s.Req.Custom; c != nil {
		rec.Spec, rec.SpecSHA256 = c.Spec, c.SpecSHA256
	}
	for _, a := range s.Artifacts {
		rec.Files = append(rec.Files, buildrecord.File{Name: a.Name, Size: a.Size, SHA256: a.SHA256})
	}
	b, err := rec.Marshal()
	if err != nil {
		return err
	}
	a, err := writeOut(s.Out, name+buildrecord.Ext, KindRecord, b)
	if err != nil {
		return err
	}
	first := s.Artifacts[0]
	first.Sidecars = append(first.Sidecars, a.Name)
	fmt.Fprintf(s.Stream, "    %s (unsigned: sign it on a trusted machine)\n", a.Name)
	return nil
}
