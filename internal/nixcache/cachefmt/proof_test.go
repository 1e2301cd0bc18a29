package cachefmt

import (
	"crypto/md5"
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

// A proof holds only for the bytes, the object name and the NAR it was
// made for, and only with the key that made it; signing and comparing
// agrees with verifying.
func TestPushProof(t *testing.T) {
	sk := testKey(t, "proof-1")
	pk := sk.ToPublicKey()
	body := []byte("StorePath: /nix/store/x\n")
	nar := NarRef{Key: "nar/abc.nar.zst", Size: 1234, MD5: make([]byte, 16)}
	meta, err := MakeProof(sk, "abc.narinfo", body, nar)
	if err != nil {
		t.Fatal(err)
	}
	good := listedNarinfo("abc.narinfo", body, meta)
	for _, with := range []*signature.SecretKey{nil, &sk} {
		got, err := CheckProofWith(pk, with, good)
		if err != nil || got.Key != nar.Key || got.Size != nar.Size || !nar.Matches(blob.Info{Size: 1234, MD5: make([]byte, 16)}) {
			t.Fatalf("a good proof (secret key known: %v): %+v, %v", with != nil, got, err)
		}
	}
	other := testKey(t, "proof-1") // same name, other key
	otherMeta, _ := MakeProof(other, "abc.narinfo", body, nar)
	tampered := strings.Replace(meta[ProofKey], " 1234 ", " 1235 ", 1)
	bad := map[string]blob.Info{
		"other bytes":         listedNarinfo("abc.narinfo", []byte("StorePath: /nix/store/y\n"), meta),
		"other object name":   listedNarinfo("def.narinfo", body, meta),
		"other NAR size":      listedNarinfo("abc.narinfo", body, map[string]string{ProofKey: tampered}),
		"other key":           listedNarinfo("abc.narinfo", body, otherMeta),
		"no proof":            listedNarinfo("abc.narinfo", body, nil),
		"garbage":             listedNarinfo("abc.narinfo", body, map[string]string{ProofKey: "1 x y z w"}),
		"store keeps no MD5s": {Key: "abc.narinfo", Size: int64(len(body)), Metadata: meta},
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
