package cachefmt

import (
	"fmt"
	"strings"

	"github.com/nix-community/go-nix/pkg/nixhash"

	"github.com/socioprophet/sourceos/internal/nixstore"
)

// Nix32Alphabet is the alphabet of the hash part of store paths, and so
// of narinfo names (and, by our naming, of NAR names).
const Nix32Alphabet = "0123456789abcdfghijklmnpqrsvwxyz"

// CacheInfoKey is the object naming the cache's store directory.
const CacheInfoKey = "nix-cache-info"

// AuditPrefix holds what cache:verify records (its watermark).
const AuditPrefix = "audit/"

// NarPrefix is where NARs are stored.
const NarPrefix = "nar/"

// NarinfoKey is the object key of a path's narinfo.
func NarinfoKey(storePath string) string { return nixstore.HashPart(storePath) + ".narinfo" }

// IsNarinfoKey says whether key names a narinfo (at the cache root).
func IsNarinfoKey(key string) bool {
	return strings.HasSuffix(key, ".narinfo") && !strings.Contains(key, "/")
}

// IsNARKey says whether key is below nar/.
func IsNARKey(key string) bool { return strings.HasPrefix(key, NarPrefix) && len(key) > len(NarPrefix) }

// HashOfKey is the hash part a narinfo key names.
func HashOfKey(k string) string { return strings.TrimSuffix(k, ".narinfo") }

// IsHashPart says whether h is the hash part of a store path: 32
// characters of the nix32 alphabet.
func IsHashPart(h string) bool {
	if len(h) != 32 {
		return false
	}
	for i := range len(h) {
		if !strings.ContainsRune(Nix32Alphabet, rune(h[i])) {
			return false
		}
	}
	return true
}

// NarKey is the object key of a NAR, named by the NarHash (known before
// compressing, so the upload can stream to its final name).
func NarKey(narHash string, c Codec) (string, error) {
	h, err := nixhash.ParseAny(narHash, nil)
	if err != nil {
		return "", fmt.Errorf("NarHash %q: %w", narHash, err)
	}
	return NarPrefix + h.Format(nixhash.NixBase32, false) + c.Ext, nil
}

// FileKey is the object key of a NAR named by the hash of the compressed
// file, as nix copy names them, with an optional suffix: where a push
// stores its NAR when the NarHash name holds other bytes.
func FileKey(fileHash []byte, c Codec, suffix string) string {
	h := nixhash.MustNewHashWithEncoding(nixhash.SHA256, fileHash, nixhash.NixBase32, false)
	return NarPrefix + h.String() + suffix + c.Ext
}
