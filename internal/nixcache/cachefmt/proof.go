package cachefmt

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/nix-community/go-nix/pkg/narinfo/signature"

	"github.com/socioprophet/sourceos/internal/blob"
)

// A push proof is custom metadata on a narinfo object, written with it on
// stores that keep metadata and checksums (GCS). It lets a later push, GC
// or audit tell, from a listing alone, that the narinfo is one we wrote,
// that the NAR it names is the one we uploaded, and what the narinfo
// refers to:
//
//	nixcache-proof: 2 <NAR key> <NAR size> <NAR MD5, hex> <key name>:<base64 signature>
//	nixcache-refs:  <n> <hash part> … (the references' hash parts, sorted), or "-"
//
// The signature, by the cache's key, is over
//
//	nixcache-proof;2;<narinfo key>;<narinfo MD5, hex>;<NAR key>;<NAR size>;<NAR MD5, hex>;<nixcache-refs>
//
// where both MD5s are the ones the store computes from the bytes it holds
// (blob.Info.MD5). The references are those of the narinfo signed (they
// are what its MD5 covers too); "-" says they were left out, when they
// would not fit in GCS's 8 KiB of metadata (more than MaxProofRefs), and a
// reader that needs them reads the narinfo. Version 1 proofs (written
// before references were recorded) have no nixcache-refs and sign
//
//	nixcache-proof;1;<narinfo key>;<narinfo MD5, hex>;<NAR key>;<NAR size>;<NAR MD5, hex>
//
// and still verify.
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

// RefsKey is the metadata of a version 2 proof listing the references.
const RefsKey = "nixcache-refs"

// MaxProofRefs is the most references a proof records: with the proof
// itself, 200 hash parts stay well within GCS's 8 KiB of custom metadata.
const MaxProofRefs = 200

// Proof is what a verified push proof vouches for.
type Proof struct {
	NAR NarRef
	// Refs are the hash parts of the narinfo's references, sorted, when
	// RefsKnown (a version 2 proof that records them).
	Refs      []string
	RefsKnown bool
}

// NarRef names the NAR object behind a narinfo as uploaded.
type NarRef struct {
	Key  string
	Size int64
	MD5  []byte
}

func proofMessage(version, narinfoKey string, narinfoMD5 []byte, nar NarRef, refs string) string {
	msg := fmt.Sprintf("nixcache-proof;%s;%s;%x;%s;%d;%x", version, narinfoKey, narinfoMD5, nar.Key, nar.Size, nar.MD5)
	if version == "2" {
		msg += ";" + refs
	}
	return msg
}

// refsValue is the nixcache-refs of refs (hash parts).
func refsValue(refs []string) string {
	if len(refs) > MaxProofRefs {
		return "-"
	}
	sorted := append([]string(nil), refs...)
	sort.Strings(sorted)
	return strings.Join(append([]string{strconv.Itoa(len(sorted))}, sorted...), " ")
}

// parseRefs reads a nixcache-refs value; known is false for "-".
func parseRefs(v string) (refs []string, known bool, err error) {
	if v == "-" {
		return nil, false, nil
	}
	f := strings.Fields(v)
	if len(f) == 0 {
		return nil, false, errors.New("empty")
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n != len(f)-1 || n > MaxProofRefs {
		return nil, false, errors.New("count")
	}
	for i, h := range f[1:] {
		if !IsHashPart(h) || (i > 0 && f[i] > h) {
			return nil, false, errors.New("not hash parts in order")
		}
	}
	return f[1:], true, nil
}

// MakeProof returns the metadata proving that body, stored as narinfoKey,
// and nar are ours, and recording refs, the hash parts of the narinfo's
// references (left out past MaxProofRefs).
func MakeProof(sk signature.SecretKey, narinfoKey string, body []byte, nar NarRef, refs []string) (map[string]string, error) {
	sum := md5.Sum(body)
	rv := refsValue(refs)
	sig, err := sk.Sign(nil, proofMessage("2", narinfoKey, sum[:], nar, rv))
	if err != nil {
		return nil, fmt.Errorf("sign proof: %w", err)
	}
	return map[string]string{ProofKey: fmt.Sprintf("2 %s %d %x %s", nar.Key, nar.Size, nar.MD5, sig), RefsKey: rv}, nil
}

// CheckProof verifies the proof of the narinfo object info with pk and
// returns what it vouches for.
func CheckProof(pk signature.PublicKey, info blob.Info) (Proof, error) {
	return CheckProofWith(pk, nil, info)
}

// CheckProofWith is CheckProof for a holder of the secret key sk: it signs
// the message and compares signatures (ed25519 signatures are
// deterministic), which costs well under half of verifying, for a push
// that checks the proof of every narinfo of a closure on each run.
func CheckProofWith(pk signature.PublicKey, sk *signature.SecretKey, info blob.Info) (Proof, error) {
	raw, ok := info.Metadata[ProofKey]
	if !ok {
		return Proof{}, ErrNoProof
	}
	f := strings.Fields(raw)
	if len(f) != 5 || (f[0] != "1" && f[0] != "2") {
		return Proof{}, errors.New("push proof does not parse")
	}
	size, err1 := strconv.ParseInt(f[2], 10, 64)
	sum, err2 := hex.DecodeString(f[3])
	sig, err3 := signature.ParseSignature(f[4])
	if err1 != nil || err2 != nil || err3 != nil || len(sum) != md5.Size {
		return Proof{}, errors.New("push proof does not parse")
	}
	p := Proof{NAR: NarRef{Key: f[1], Size: size, MD5: sum}}
	rv := info.Metadata[RefsKey]
	if f[0] == "2" {
		refs, known, err := parseRefs(rv)
		if err != nil {
			return Proof{}, fmt.Errorf("push proof: %s does not parse (%v)", RefsKey, err)
		}
		p.Refs, p.RefsKnown = refs, known
	}
	if len(info.MD5) != md5.Size || !signedBy(pk, sk, proofMessage(f[0], info.Key, info.MD5, p.NAR, rv), sig) {
		return Proof{}, fmt.Errorf("push proof does not verify with %s", pk.Name)
	}
	return p, nil
}

// ProofNARKey is the NAR key the push proof of info names, unverified:
// what to look up before checking the proof.
func ProofNARKey(info blob.Info) (string, bool) {
	f := strings.Fields(info.Metadata[ProofKey])
	if len(f) != 5 || !IsNARKey(f[1]) {
		return "", false
	}
	return f[1], true
}

// ErrNoProof means a narinfo object carries no push proof.
var ErrNoProof = errors.New("carries no push proof")

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
