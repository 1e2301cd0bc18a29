package verify

import (
	"errors"
	"fmt"

	"github.com/socioprophet/sourceos/internal/catalog"
	"github.com/socioprophet/sourceos/internal/provenance"
	"github.com/socioprophet/sourceos/internal/sidecar"
	"github.com/socioprophet/sourceos/internal/signature"
)

// CheckKind is the check that tells a release from a self-serve custom
// build, by what the signed provenance says (its build type, builder and
// custom parameters agree, see provenance.ParsePredicate), and refuses a
// custom build unless the caller asked for one.
const CheckKind = "release or custom build"

// ErrCustomRefused is the detail of a custom build verified without
// asking for one.
var ErrCustomRefused = errors.New("a self-serve custom build, not a release")

// Builder is who built an artifact, as its signed provenance says.
type Builder struct {
	ID      string `json:"id"`
	BuildID string `json:"buildId,omitempty"`
	// Custom is set for a self-serve custom build.
	Custom *CustomBuild `json:"custom,omitempty"`
}

// CustomBuild is what a report says of a custom build.
type CustomBuild struct {
	User       string `json:"user"`
	BuildID    string `json:"buildId"`
	SpecSHA256 string `json:"specSha256"`
}

// pickKey chooses the key the artifact is checked with: the custom-build
// key when one is configured and the signature names its key id, else
// the release key. What the custom-build key signs can only verify as a
// custom build (see kind).
func (v *verifier) pickKey(release, custom signature.PublicKey, haveCustom bool) signature.PublicKey {
	if !haveCustom {
		return release
	}
	d := v.read(sidecar.ExtMinisig)
	if d.err != nil {
		return release
	}
	s, err := signature.ParseSignature(d.data)
	if err != nil || s.Key() != custom.ID || custom.ID == release.ID {
		return release
	}
	v.customKey = true
	return custom
}

// kind reports the builder and checks the artifact is what the caller
// accepts: a release, or a custom build they asked for (AllowCustom, or
// the build id in ExpectBuildID). A name and a kind must agree: a release
// never carries a custom build's name, a custom build never a release's,
// and the custom-build key vouches for custom builds only.
func (v *verifier) kind() {
	if !v.signed(CheckKind) {
		return
	}
	b := v.predicate.Build
	v.rep.Builder = &Builder{ID: b.BuilderID, BuildID: b.BuildID}
	if c := b.Custom; c != nil {
		v.rep.Builder.Custom = &CustomBuild{User: c.UID, BuildID: c.BuildID, SpecSHA256: c.SpecSHA256}
	}
	status, detail := v.kindStatus(b)
	v.add(CheckKind, status, detail)
}

// kindStatus is the outcome of CheckKind; see kind.
func (v *verifier) kindStatus(b provenance.BuildInfo) (string, string) {
	o := v.opts
	switch {
	case o.ExpectBuildID != "" && b.BuildID != o.ExpectBuildID:
		return Fail, fmt.Sprintf("built by build %q, not the build %q asked for (SOURCEOS_VERIFY_BUILD_ID)", b.BuildID, o.ExpectBuildID)
	case b.Custom == nil && catalog.IsCustomName(v.name):
		return Fail, fmt.Sprintf("%s is named as a custom build but its provenance claims a release", v.name)
	case b.Custom == nil && v.customKey:
		return Fail, "signed with the custom-build key (SOURCEOS_CUSTOM_SIGN_PUBKEY) but its provenance claims a release"
	case b.Custom == nil:
		return Pass, "release, built by " + b.BuilderID
	case !catalog.IsCustomName(v.name) && !v.isManifest():
		return Fail, fmt.Sprintf("a custom build under a name that is not a custom build's (%s)", v.name)
	}
	what := fmt.Sprintf("custom build of user %s, build %s, spec sha256 %s, built by %s", b.Custom.UID, b.Custom.BuildID, b.Custom.SpecSHA256, b.BuilderID)
	if o.AllowCustom || (o.ExpectBuildID != "" && o.ExpectBuildID == b.BuildID) {
		return Pass, what
	}
	return Fail, fmt.Sprintf("%v: %s; set SOURCEOS_VERIFY_ALLOW_CUSTOM=1, or SOURCEOS_VERIFY_BUILD_ID to its build id, to accept it", ErrCustomRefused, what)
}

// isManifest reports whether the artifact is a netboot set's manifest,
// whose name is the same for every set (its files carry the set's name).
func (v *verifier) isManifest() bool { return v.name == sidecar.ManifestName }
