package image

import (
	"io"

	"github.com/socioprophet/sourceos/internal/execx"
)

// newPrefixWriter streams a build log to w with a prefix.
func newPrefixWriter(w io.Writer, prefix string) *execx.PrefixWriter {
	return execx.NewPrefixWriter(w, prefix, 0)
}
