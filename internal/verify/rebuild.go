package verify

import (
	"errors"
	"fmt"
)

// ErrNotReproducible is the failure of the rebuild check when
// reproducibility is required and the signed provenance does not record
// a rebuild that gave the same bytes.
var ErrNotReproducible = errors.New("the signed provenance does not record a reproducible rebuild")

// rebuild reports the rebuild check the signed predicate records (read
// strictly with it: see provenance.RebuildCheck). Whether the image was
// reproducible is a fact the check reports; it fails only when
// RequireReproducible asks for a reproducible image and the record is
// missing or says the rebuild differed. The OSImage document's
// reproducible annotation is held to the same record by the claims check.
func (v *verifier) rebuild() {
	if !v.signed(CheckRebuild) {
		return
	}
	rc := v.predicate.Build.Rebuild
	switch {
	case rc == nil && v.opts.RequireReproducible:
		v.fail(CheckRebuild, fmt.Errorf("%w: no rebuild check ran", ErrNotReproducible))
	case rc == nil:
		v.add(CheckRebuild, Skip, "no rebuild check recorded")
	case !rc.Reproducible && v.opts.RequireReproducible:
		v.fail(CheckRebuild, fmt.Errorf("%w: %s rebuilt to different bytes (%s)", ErrNotReproducible, rc.DifferingOutput, rc.Method))
	case !rc.Reproducible:
		v.add(CheckRebuild, Pass, fmt.Sprintf("recorded NOT reproducible: %s rebuilt to different bytes (%s)", rc.DifferingOutput, rc.Method))
	default:
		v.add(CheckRebuild, Pass, fmt.Sprintf("recorded reproducible: %s rebuilt to the same bytes (%s)", rc.Output, rc.Method))
	}
}
