package cachefmt

import (
	"crypto/md5"
	"fmt"
	"strings"
	"testing"

	"github.com/nix-community/go-nix/pkg/narinfo/signature"

	"github.com/socioprophet/sourceos/internal/blob"
)

func testKey(t testing.TB, name string) signature.SecretKey {
	t.Helper()
	sk, _, err := signature.GenerateKeypair(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	return sk
}

// listedNarinfo is what a listing shows of body stored as key with meta.
func listedNarinfo(key string, body []byte, meta map[string]string) blob.Info {
	sum := md5.Sum(body)
	return blob.Info{Key: key, Size: int64(len(body)), MD5: sum[:], Metadata: meta}
}

const (
	refA = "0svp6yqk91kgf5g7xr90xy3yjsk0jp0a"
	refB = "1svp6yqk91kgf5g7xr90xy3yjsk0jp0a"
)

// with returns meta with key set to v.
func with(meta map[string]string, key, v string) map[string]string {
	out := map[string]string{}
	for k, x := range meta {
		out[k] = x
	}
	out[key] = v
	return out
}

// A proof holds only for the bytes, the object name, the NAR and the
// references it was made for, and only with the key that made it; signing
// and comparing agrees with verifying.
func TestPushProof(t *testing.T) {
	sk := testKey(t, "proof-1")
	pk := sk.ToPublicKey()
	body := []byte("StorePath: /nix/store/x\n")
	nar := NarRef{Key: "nar/abc.nar.zst", Size: 1234, MD5: make([]byte, 16)}
	meta, err := MakeProof(sk, "abc.narinfo", body, nar, []string{refB, refA})
	if err != nil {
		t.Fatal(err)
	}
	good := listedNarinfo("abc.narinfo", body, meta)
	for _, with := range []*signature.SecretKey{nil, &sk} {
		got, err := CheckProofWith(pk, with, good)
		if err != nil || got.NAR.Key != nar.Key || got.NAR.Size != nar.Size || !nar.Matches(blob.Info{Size: 1234, MD5: make([]byte, 16)}) ||
			!got.RefsKnown || strings.Join(got.Refs, " ") != refA+" "+refB {
			t.Fatalf("a good proof (secret key known: %v): %+v, %v", with != nil, got, err)
		}
	}
	other := testKey(t, "proof-1") // same name, other key
	otherMeta, _ := MakeProof(other, "abc.narinfo", body, nar, nil)
	tampered := strings.Replace(meta[ProofKey], " 1234 ", " 1235 ", 1)
	bad := map[string]blob.Info{
		"other bytes":         listedNarinfo("abc.narinfo", []byte("StorePath: /nix/store/y\n"), meta),
		"other object name":   listedNarinfo("def.narinfo", body, meta),
		"other NAR size":      listedNarinfo("abc.narinfo", body, with(meta, ProofKey, tampered)),
		"other key":           listedNarinfo("abc.narinfo", body, otherMeta),
		"no proof":            listedNarinfo("abc.narinfo", body, nil),
		"garbage":             listedNarinfo("abc.narinfo", body, map[string]string{ProofKey: "1 x y z w"}),
		"store keeps no MD5s": {Key: "abc.narinfo", Size: int64(len(body)), Metadata: meta},
		"a reference dropped": listedNarinfo("abc.narinfo", body, with(meta, RefsKey, "1 "+refA)),
		"references hidden":   listedNarinfo("abc.narinfo", body, with(meta, RefsKey, "-")),
		"references removed":  listedNarinfo("abc.narinfo", body, with(meta, RefsKey, "")),
		"downgraded to v1":    listedNarinfo("abc.narinfo", body, with(meta, ProofKey, "1"+meta[ProofKey][1:])),
	}
	for name, info := range bad {
		for _, with := range []*signature.SecretKey{nil, &sk} {
			if _, err := CheckProofWith(pk, with, info); err == nil {
				t.Errorf("%s (secret key known: %v): accepted", name, with != nil)
			}
		}
	}
	if nar.Matches(blob.Info{Size: 1234}) || nar.Matches(blob.Info{Size: 1233, MD5: make([]byte, 16)}) {
		t.Error("a NAR without an MD5, or of another size, matches")
	}
}

// A version 1 proof (no references) still verifies; a proof of more
// references than fit records none, and says so.
func TestPushProofVersionsAndManyRefs(t *testing.T) {
	sk := testKey(t, "proof-1")
	pk := sk.ToPublicKey()
	body := []byte("StorePath: /nix/store/x\n")
	nar := NarRef{Key: "nar/abc.nar.zst", Size: 1234, MD5: make([]byte, 16)}
	sum := md5.Sum(body)
	sig, err := sk.Sign(nil, proofMessage("1", "abc.narinfo", sum[:], nar, ""))
	if err != nil {
		t.Fatal(err)
	}
	v1 := map[string]string{ProofKey: fmt.Sprintf("1 %s %d %x %s", nar.Key, nar.Size, nar.MD5, sig)}
	if p, err := CheckProof(pk, listedNarinfo("abc.narinfo", body, v1)); err != nil || p.RefsKnown || p.NAR.Key != nar.Key {
		t.Fatalf("a version 1 proof: %+v, %v", p, err)
	}
	var many []string
	for i := range MaxProofRefs + 1 {
		many = append(many, fmt.Sprintf("%032d", i))
	}
	meta, err := MakeProof(sk, "abc.narinfo", body, nar, many)
	if err != nil || meta[RefsKey] != "-" || metadataSize(meta) > 8<<10 {
		t.Fatalf("proof of %d references: %v, %v", len(many), meta[RefsKey], err)
	}
	if p, err := CheckProof(pk, listedNarinfo("abc.narinfo", body, meta)); err != nil || p.RefsKnown {
		t.Fatalf("a proof without its references: %+v, %v", p, err)
	}
	meta, _ = MakeProof(sk, "abc.narinfo", body, nar, many[:MaxProofRefs])
	p, err := CheckProof(pk, listedNarinfo("abc.narinfo", body, meta))
	if err != nil || !p.RefsKnown || len(p.Refs) != MaxProofRefs || metadataSize(meta) > 8<<10 {
		t.Fatalf("a proof of %d references (%d bytes of metadata): %v", MaxProofRefs, metadataSize(meta), err)
	}
}

func metadataSize(meta map[string]string) int {
	n := 0
	for k, v := range meta {
		n += len(k) + len(v)
	}
	return n
}
