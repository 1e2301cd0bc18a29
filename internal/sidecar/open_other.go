//go:build !unix

package sidecar

// oNonblock is unset where there are no FIFOs to block on.
const oNonblock = 0
