package sidecar

import (
	"fmt"

	"github.com/socioprophet/sourceos/internal/digest"
)

// Artifact is one file to sign.
type Artifact struct {
	Path string
	// Digests, when set, were computed while the file was written (see
	// digest.Copy) and are trusted instead of reading the file again.
	Digests *digest.Digests
}

// Hash returns the artifact's Default digests; see HashSet.
func (a Artifact) Hash() (digest.Digests, error) { return a.HashSet(digest.Default) }

// HashSet returns the artifact's digests of set: the handed-over ones when
// they hold set, else the file is hashed. Handed-over digests must at
// least match the file size. The artifact must be a regular file (a FIFO
// or a device is refused without blocking).
func (a Artifact) HashSet(set digest.Set) (digest.Digests, error) {
	f, st, err := OpenRegular(a.Path)
	if err != nil {
		return digest.Digests{}, err
	}
	defer f.Close()
	if a.Digests != nil && (!a.Digests.Complete() || a.Digests.Size != st.Size()) {
		return digest.Digests{}, fmt.Errorf("%s: the digests handed over are for %d bytes, the file has %d", a.Path, a.Digests.Size, st.Size())
	}
	if a.Digests != nil && a.Digests.Has(set) {
		return *a.Digests, nil
	}
	d, err := digest.ReaderSet(f, set|digest.Default)
	if err != nil {
		return digest.Digests{}, fmt.Errorf("digest %s: %w", a.Path, err)
	}
	return d, nil
}
