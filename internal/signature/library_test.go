package signature_test

import (
	"bytes"
	"crypto"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"testing"

	"aead.dev/minisign"

	"github.com/socioprophet/sourceos/internal/signature"
)

// libraryKeys loads one of our key pairs into aead.dev/minisign's types.
func libraryKeys(t *testing.T, kp *signature.KeyPair) (minisign.PublicKey, minisign.PrivateKey) {
	t.Helper()
	var pub minisign.PublicKey
	if err := pub.UnmarshalText(kp.PublicKey); err != nil {
		t.Fatal(err)
	}
	var priv minisign.PrivateKey
	if err := priv.UnmarshalText(kp.SecretKey); err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// aead.dev/minisign verifies what we write, from the whole message and
// streaming through its Reader, and refuses it for another message.
func TestLibraryVerifiesOurSignatures(t *testing.T) {
	kp := generate(t, "")
	pub, _ := libraryKeys(t, kp)
	k := load(t, kp.SecretKey, "")
	msg := bytes.Repeat([]byte("sourceos image\n"), 10000)
	sig := signed(t, k, msg, "a.iso")

	if !minisign.Verify(pub, msg, sig) {
		t.Error("minisign.Verify refused our signature")
	}
	r := minisign.NewReader(bytes.NewReader(msg))
	if _, err := io.Copy(io.Discard, r); err != nil {
		t.Fatal(err)
	}
	if !r.Verify(pub, sig) {
		t.Error("minisign.Reader refused our signature")
	}
	if minisign.Verify(pub, append(msg, 'x'), sig) {
		t.Error("minisign.Verify accepted our signature for another message")
	}
	var parsed minisign.Signature
	if err := parsed.UnmarshalText(sig); err != nil || parsed.TrustedComment != "timestamp:1767225600\tfile:a.iso\tbuild:build-42\thashed" {
		t.Errorf("library reads %q, %v", parsed.TrustedComment, err)
	}
}

// We verify what aead.dev/minisign writes: prehashed (its Reader, and its
// crypto.Signer given a BLAKE2b-512 digest) and legacy (only when
// allowed, and from the whole file).
func TestWeVerifyLibrarySignatures(t *testing.T) {
	kp := generate(t, "")
	_, priv := libraryKeys(t, kp)
	msg := []byte("signed by aead.dev/minisign\n")

	r := minisign.NewReader(bytes.NewReader(msg))
	if _, err := io.Copy(io.Discard, r); err != nil {
		t.Fatal(err)
	}
	streamed := r.SignWithComments(priv, "timestamp:1\tfile:a.iso\thashed", "library")
	digestSigned, err := priv.Sign(nil, b2(msg), crypto.BLAKE2b_512)
	if err != nil {
		t.Fatal(err)
	}
	for name, sig := range map[string][]byte{"reader": streamed, "signer": digestSigned} {
		s, err := signature.Verify(kp.Public, sig, b2(msg), signature.VerifyOptions{})
		if err != nil || !s.Prehashed() {
			t.Errorf("%s: prehashed library signature: %v", name, err)
		}
		if _, err := signature.Verify(kp.Public, sig, b2([]byte("other")), signature.VerifyOptions{}); !errors.Is(err, signature.ErrBadSignature) {
			t.Errorf("%s: another file: %v, want ErrBadSignature", name, err)
		}
	}
	if _, err := signature.Verify(kp.Public, streamed, b2(msg), signature.VerifyOptions{File: "a.iso"}); err != nil {
		t.Errorf("file named in the trusted comment: %v", err)
	}

	legacy := minisign.SignWithComments(priv, msg, "timestamp:1\tfile:a.iso", "library")
	if _, err := signature.Verify(kp.Public, legacy, b2(msg), signature.VerifyOptions{}); !errors.Is(err, signature.ErrLegacy) {
		t.Errorf("legacy signature: %v, want ErrLegacy", err)
	}
	if _, err := signature.Verify(kp.Public, legacy, nil, signature.VerifyOptions{AllowLegacy: true, Message: msg, File: "a.iso"}); err != nil {
		t.Errorf("allowed legacy signature: %v", err)
	}
	if _, err := signature.Verify(kp.Public, legacy, nil, signature.VerifyOptions{AllowLegacy: true, Message: []byte("x")}); !errors.Is(err, signature.ErrBadSignature) {
		t.Errorf("allowed legacy signature of another file: %v", err)
	}
}

// What we write is byte for byte what the library writes for the same
// signature: its marshalling, not ours.
func TestSignatureFileIsTheLibrarys(t *testing.T) {
	kp := generate(t, "")
	k := load(t, kp.SecretKey, "")
	sig := signed(t, k, []byte("x"), "a.iso")
	s, err := signature.ParseSignature(sig)
	if err != nil {
		t.Fatal(err)
	}
	text, err := s.Signature.MarshalText()
	if err != nil || !bytes.Equal(text, sig) || !bytes.Equal(s.Marshal(), sig) {
		t.Errorf("library marshals\n%s\nwe wrote\n%s", text, sig)
	}
	if s.Key() != kp.Public.ID || !strings.HasPrefix(string(sig), "untrusted comment: signature from minisign secret key "+kp.Public.ID.String()+"\n") {
		t.Errorf("key id %s, file:\n%s", s.Key(), sig)
	}
}

// A secret key whose public half does not belong to its seed is refused:
// it would sign what its published key never verifies.
func TestSecretKeyHalvesMustAgree(t *testing.T) {
	kp := generate(t, "")
	lines := strings.Split(strings.TrimSpace(string(kp.SecretKey)), "\n")
	raw, err := base64.StdEncoding.DecodeString(lines[1])
	if err != nil || len(raw) != 158 {
		t.Fatalf("secret key line: %d bytes, %v", len(raw), err)
	}
	raw[54+8+32] ^= 1 // first byte of the public half
	lines[1] = base64.StdEncoding.EncodeToString(raw)
	if _, err := signature.ParseSecretKey([]byte(strings.Join(lines, "\n")+"\n"), ""); !errors.Is(err, signature.ErrKeyFormat) {
		t.Errorf("mismatched halves: %v, want ErrKeyFormat", err)
	}
}
