package provenance

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	ita "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/types/known/structpb"
)

// RebuildCheckName is the name of the runDetails.byproducts entry that
// records a rebuild check. It has no digest: its annotations are the
// record (method, output, reproducible, and differingOutput when the
// second build differed).
const RebuildCheckName = "rebuild-check"

// AnnotationReproducible is "true" or "false" in an OSImage document's
// ociAnnotations when a rebuild check ran: whether building the image
// derivation again gave the same bytes. Absent when no check ran.
const AnnotationReproducible = "com.socioprophet.os.reproducible"

// Annotation keys of the rebuild check byproduct.
const (
	rebuildMethod    = "method"
	rebuildOutput    = "output"
	rebuildOK        = "reproducible"
	rebuildDiffering = "differingOutput"
)

// check refuses a record that says two things at once.
func (r RebuildCheck) check() error {
	switch {
	case r.Method == "":
		return errors.New("rebuild check: no method")
	case !strings.HasPrefix(r.Output, "/nix/store/"):
		return fmt.Errorf("rebuild check: output %q is not a store path", r.Output)
	case r.Reproducible && r.DifferingOutput != "":
		return errors.New("rebuild check: reproducible, yet an output differs")
	case !r.Reproducible && !strings.HasPrefix(r.DifferingOutput, "/nix/store/"):
		return fmt.Errorf("rebuild check: not reproducible, and the differing output %q is not a store path", r.DifferingOutput)
	}
	return nil
}

func rebuildDescriptor(r RebuildCheck) (*ita.ResourceDescriptor, error) {
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("slsa predicate: %w", err)
	}
	ann := map[string]any{rebuildMethod: r.Method, rebuildOutput: r.Output, rebuildOK: r.Reproducible}
	if !r.Reproducible {
		ann[rebuildDiffering] = r.DifferingOutput
	}
	s, err := structpb.NewStruct(ann)
	if err != nil {
		return nil, fmt.Errorf("slsa predicate: rebuild check: %w", err)
	}
	return &ita.ResourceDescriptor{Name: RebuildCheckName, Annotations: s}, nil
}

// readRebuildDescriptor reads the record back, strictly: exactly the
// annotations rebuildDescriptor writes, with their types, and nothing
// else in the descriptor.
func readRebuildDescriptor(rd *ita.ResourceDescriptor) (*RebuildCheck, error) {
	if rd.GetUri() != "" || len(rd.GetDigest()) > 0 || len(rd.GetContent()) > 0 || rd.GetDownloadLocation() != "" || rd.GetMediaType() != "" {
		return nil, fmt.Errorf("%s: only annotations are expected", RebuildCheckName)
	}
	f := rd.GetAnnotations().GetFields()
	want := []string{rebuildMethod, rebuildOutput, rebuildOK}
	if d, ok := f[rebuildOK]; ok && !d.GetBoolValue() {
		want = append(want, rebuildDiffering)
	}
	for k := range f {
		if !slices.Contains(want, k) {
			return nil, fmt.Errorf("%s: unexpected annotation %q", RebuildCheckName, k)
		}
	}
	var r RebuildCheck
	for name, dst := range map[string]*string{rebuildMethod: &r.Method, rebuildOutput: &r.Output, rebuildDiffering: &r.DifferingOutput} {
		if err := stringField(f, name, dst); err != nil {
			return nil, fmt.Errorf("%s: %w", RebuildCheckName, err)
		}
	}
	ok, isBool := f[rebuildOK].GetKind().(*structpb.Value_BoolValue)
	if !isBool {
		return nil, fmt.Errorf("%s: %s is not a boolean", RebuildCheckName, rebuildOK)
	}
	r.Reproducible = ok.BoolValue
	if err := r.check(); err != nil {
		return nil, err
	}
	return &r, nil
}
