// Package release signs built artifacts and writes their provenance beside
// them, and verifies all of it: the artifact-level `mage sign` and `mage
// verify`, also called by the build pipeline. Each artifact is hashed once
// (or not at all, when the build hands over the digests it computed while
// copying), and every document it emits is checked by the same code that
// verifies it. One signature covers every document a user reads: the DSSE
// envelope signs the statement, whose predicate lists the SBOM and the
// OSImage document with their digests (runDetails.byproducts), and verify
// takes what it compares everything else with from that signed statement.
package release

import (
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/digest"
	"github.com/socioprophet/sourceos/internal/provenance"
)

// Sidecar file name suffixes: artifact "a" gets "a.sha256", "a.minisig"…
const (
	ExtSHA256    = ".sha256"
	ExtMinisig   = ".minisig"
	ExtStatement = ".intoto.json"
	ExtDSSE      = ".intoto.dsse.json"
	ExtSLSA      = ".slsa.json"
	ExtSBOM      = ".sbom.json"
	ExtOSImage   = ".osimage.json"
)

// SidecarExts lists every sidecar suffix, signatures last.
var SidecarExts = []string{ExtSHA256, ExtStatement, ExtSLSA, ExtSBOM, ExtOSImage, ExtMinisig, ExtDSSE}

// Kind is what is being signed.
type Kind string

// Kinds of release.
const (
	// ISO is one installer image: it also gets an SBOM (when the closure
	// is known) and an OSImage document.
	ISO Kind = "iso"
	// Netboot is a kernel, an initrd and netboot-manifest.json, each
	// signed on its own.
	Netboot Kind = "netboot"
)

// KindOf maps TARGET to a Kind.
func KindOf(target string) (Kind, error) {
	switch Kind(target) {
	case ISO, Netboot:
		return Kind(target), nil
	}
	return "", fmt.Errorf("TARGET %q: want iso or netboot", target)
}

// Artifact is one file to sign.
type Artifact struct {
	Path string
	// Digests, when set, were computed while the file was written (see
	// digest.Copy) and are trusted instead of reading the file again.
	Digests *digest.Digests
}

// digests returns the artifact's digests, hashing the file only when none
// were handed over. Handed-over digests must at least match the file size.
// The artifact must be a regular file (a FIFO or a device is refused
// without blocking).
func (a Artifact) digests() (digest.Digests, error) {
	f, st, err := openRegular(a.Path)
	if err != nil {
		return digest.Digests{}, err
	}
	defer f.Close()
	if a.Digests == nil {
		d, err := digest.Reader(f)
		if err != nil {
			return digest.Digests{}, fmt.Errorf("digest %s: %w", a.Path, err)
		}
		return d, nil
	}
	if !a.Digests.Complete() || a.Digests.Size != st.Size() {
		return digest.Digests{}, fmt.Errorf("%s: the digests handed over are for %d bytes, the file has %d", a.Path, a.Digests.Size, st.Size())
	}
	return *a.Digests, nil
}

// Ref is where a sidecar named name is published: a URL under the GCS
// prefix when one is set (gs://bucket/prefix becomes its public
// https://storage.googleapis.com URL), else the bare file name.
func Ref(gcsPrefix, name string) string {
	p := strings.TrimRight(gcsPrefix, "/")
	if p == "" {
		return name
	}
	if rest, ok := strings.CutPrefix(p, "gs://"); ok {
		p = "https://storage.googleapis.com/" + rest
	}
	return p + "/" + url.PathEscape(name)
}

// refNames reports whether ref locates the file name: the bare name or a
// URL whose last path element is the name.
func refNames(ref, name string) bool {
	if ref == name {
		return true
	}
	u, err := url.Parse(ref)
	if err != nil || u.Scheme == "" {
		return false
	}
	return path.Base(u.Path) == name
}

// BuildInfoOptions are the parts of a build's provenance that are not in
// the configuration.
type BuildInfoOptions struct {
	StartedOn, FinishedOn time.Time
	FlakeLock             []byte
	// BuilderID defaults to LocalBuilderID.
	BuilderID string
}

// LocalBuilderID names a build made on a developer's machine.
const LocalBuilderID = "https://sourceos.dev/builders/local"

// BuildInfoFromConfig fills provenance.BuildInfo from a run's
// configuration, for `mage sign` outside the build pipeline.
func BuildInfoFromConfig(c *config.Config, o BuildInfoOptions) provenance.BuildInfo {
	builder := o.BuilderID
	if builder == "" {
		builder = LocalBuilderID
	}
	return provenance.BuildInfo{
		Edition: c.Edition, Arch: c.Arch, Target: c.Target, Hostname: c.Hostname,
		Version: c.Version, Channel: c.Channel,
		FlakeRef:   c.Flake,
		FlakeAttr:  fmt.Sprintf("packages.%s-linux.sourceos-%s-%s", c.Arch, c.Edition, c.Target),
		SourceRepo: c.SourceRepo, SourceRev: c.SourceRev, FlakeLock: o.FlakeLock,
		BuildID: c.BuildID, BuilderID: builder,
		StartedOn: o.StartedOn, FinishedOn: o.FinishedOn,
	}
}
