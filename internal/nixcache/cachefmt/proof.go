package cachefmt

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/nix-community/go-nix/pkg/narinfo/signature"

	"github.com/socioprophet/sourceos/internal/blob"
)

// A push proof is custom metadata on a narinfo object, written with it on
// stores that keep metadata and checksums (GCS). It lets a later push or
// audit tell, from a listing alone, that the narinfo is one we wrote and
// that the NAR it names is the one we uploaded:
//
//	nixcache-proof: 1 <NAR key> <NAR size> <NAR MD5, hex> <key name>:<base64 signature>
//
// The signature, by the cache's key, is over
//
//	nixcache-proof;1;<narinfo key>;<narinfo MD5, hex>;<NAR key>;<NAR size>;<NAR MD5, hex>
//
// where both MD5s are the ones the store computes from the bytes it holds
// (blob.Info.MD5).
//
// Someone with write access to the bucket can delete or rewrite any object
// and its metadata, copy a proof from one object to another, and re-upload
// bytes we wrote. They cannot:
//   - sign: the key is ours. The message starts with "nixcache-proof;",
//     and Nix signs fingerprints starting with "1;/", so neither kind of
//     signature can stand for the other;
//   - choose the MD5 the store reports: GCS computes it from the stored
//     bytes. Other bytes with the MD5 of ours would take an MD5 second
//     preimage, which is out of reach (MD5 collisions need both documents
//     to be the attacker's; we sign only what we wrote);
//   - forge a checksum match with CRC32C instead, which is why it is not
//     used: CRC32C is linear, and four chosen bytes give any content any
//     CRC32C at any size.
//
// So a narinfo whose proof verifies against the MD5 the listing reports is
// one we wrote for that key, and the NAR listed under the proof's key with
// the proof's size and MD5 is the one we uploaded. What an attacker can
// still do is make a path unavailable (delete or overwrite its objects):
// the next push sees the proof fail or the NAR differ and publishes the
// path again; cache:verify reports it. Replaying one of our own earlier
// proofs with its narinfo brings back a narinfo we wrote for the same path,
// which is valid whenever the NAR it names is (checked the same way).
//
// A directory store keeps neither metadata nor checksums: there, presence
// reads and checks each narinfo (parse, store path, our signature) and the
// NAR's size, and only cache:verifyDeep checks the NAR's bytes.
const ProofKey = "nixcache-proof"

// NarRef names the NAR object behind a narinfo as uploaded.
type NarRef struct {
	Key  string
	Size int64
	MD5  []byte
}

func proofMessage(narinfoKey string, narinfoMD5 []byte, nar NarRef) string {
	return fmt.Sprintf("nixcache-proof;1;%s;%x;%s;%d;%x", narinfoKey, narinfoMD5, nar.Key, nar.Size, nar.MD5)
}

// MakeProof returns the metadata proving that body, stored as narinfoKey,
// and nar are ours.
func MakeProof(sk signature.SecretKey, narinfoKey string, body []byte, nar NarRef) (map[string]string, error) {
	sum := md5.Sum(body)
	sig, err := sk.Sign(nil, proofMessage(narinfoKey, sum[:], nar))
	if err != nil {
		return nil, fmt.Errorf("sign proof: %w", err)
	}
	return map[string]string{ProofKey: fmt.Sprintf("1 %s %d %x %s", nar.Key, nar.Size, nar.MD5, sig)}, nil
}

// CheckProof verifies the proof of the narinfo object info with pk and
// returns the NAR it vouches for.
func CheckProof(pk signature.PublicKey, info blob.Info) (NarRef, error) {
	return CheckProofWith(pk, nil, info)
}

// CheckProofWith is CheckProof for a holder of the secret key sk: it signs
// the message and compares signatures (ed25519 signatures are
// deterministic), which costs well under half of verifying, for a push
// that checks the proof of every narinfo of a closure on each run.
func CheckProofWith(pk signature.PublicKey, sk *signature.SecretKey, info blob.Info) (NarRef, error) {
	raw, ok := info.Metadata[ProofKey]
	if !ok {
		return NarRef{}, fmt.Errorf("carries no push proof")
	}
	f := strings.Fields(raw)
	if len(f) != 5 || f[0] != "1" {
		return NarRef{}, fmt.Errorf("push proof does not parse")
	}
	size, err1 := strconv.ParseInt(f[2], 10, 64)
	sum, err2 := hex.DecodeString(f[3])
	sig, err3 := signature.ParseSignature(f[4])
	if err1 != nil || err2 != nil || err3 != nil || len(sum) != md5.Size {
		return NarRef{}, fmt.Errorf("push proof does not parse")
	}
	nar := NarRef{Key: f[1], Size: size, MD5: sum}
	if len(info.MD5) != md5.Size || !signedBy(pk, sk, proofMessage(info.Key, info.MD5, nar), sig) {
		return NarRef{}, fmt.Errorf("push proof does not verify with %s", pk.Name)
	}
	return nar, nil
}

// signedBy says whether sig is pk's signature over msg; sk, when known, is
// pk's secret half.
func signedBy(pk signature.PublicKey, sk *signature.SecretKey, msg string, sig signature.Signature) bool {
	if sk == nil {
		return pk.Verify(msg, sig)
	}
	ours, err := sk.Sign(nil, msg)
	return err == nil && ours.Name == sig.Name && bytes.Equal(ours.Data, sig.Data)
}

// Matches says whether the stored object info is the NAR nar vouches for.
func (nar NarRef) Matches(info blob.Info) bool {
	return info.Size == nar.Size && len(info.MD5) == md5.Size && bytes.Equal(info.MD5, nar.MD5)
}

// Proving says whether s keeps what push proofs need.
func Proving(s blob.Store) bool {
	f := s.Features()
	return f.Checksums && f.Metadata
}
