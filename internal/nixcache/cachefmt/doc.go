// Package cachefmt is the on-bucket format of the Nix binary cache that
// the push, GC and audit subsystems share: object names (narinfos, NARs,
// roots), narinfos (building, parsing, signatures), push proofs (the
// signed metadata that lets a listing alone vouch for a narinfo, its NAR
// and its references), roots, NAR compression, and listing the cache in
// ranges. It holds no policy: what to push, keep or report is the
// subsystems'.
package cachefmt
