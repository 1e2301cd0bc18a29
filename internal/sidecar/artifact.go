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

// Hash returns the artifact's digests, hashing the file only when none
// were handed over. Handed-over digests must at least match the file size.
// The artifact must be a regular file (a FIFO or a device is refused
// without blocking).
func (a Artifact) Hash() (digest.Digests, error) {
	f, st, err := OpenRegular(a.Path)
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
