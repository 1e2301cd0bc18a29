package sign_test

import (
	"bytes"
	"testing"

	"github.com/socioprophet/sourceos/internal/sign"
)

// Parsing never panics, and whatever parses marshals back to a signature
// that parses to the same thing.
func FuzzParseSignature(f *testing.F) {
	kp, err := sign.Generate(sign.GenerateOptions{})
	if err != nil {
		f.Fatal(err)
	}
	k, err := sign.ParseSecretKey(kp.SecretKey, "")
	if err != nil {
		f.Fatal(err)
	}
	good, err := k.SignDigest(make([]byte, 64), sign.Comment{Timestamp: when, File: "a.iso", BuildID: "b"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("untrusted comment: x\nRUQ=\ntrusted comment: y\nAAAA\n"))
	f.Add([]byte("\n\n\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := sign.ParseSignature(data)
		if err != nil {
			return
		}
		again, err := sign.ParseSignature(s.Marshal())
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if !bytes.Equal(again.Marshal(), s.Marshal()) {
			t.Fatal("round trip changed the signature")
		}
		_ = s.VerifyComment(kp.Public)
		_ = s.VerifyDigest(kp.Public, make([]byte, 64))
	})
}
