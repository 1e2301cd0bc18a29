//go:build !unix

package release

// oNonblock is unset where there are no FIFOs to block on.
const oNonblock = 0
