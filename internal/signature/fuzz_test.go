package signature_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/socioprophet/sourceos/internal/signature"
)

// Parsing never panics, and whatever parses marshals back to a signature
// that parses to the same thing.
func FuzzParseSignature(f *testing.F) {
	kp, err := signature.Generate(signature.GenerateOptions{})
	if err != nil {
		f.Fatal(err)
	}
	k, err := signature.ParseSecretKey(kp.SecretKey, "")
	if err != nil {
		f.Fatal(err)
	}
	good, err := k.SignDigest(make([]byte, 64), signature.Comment{Timestamp: when, File: "a.iso", BuildID: "b"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("untrusted comment: x\nRUQ=\ntrusted comment: y\nAAAA\n"))
	f.Add([]byte("\n\n\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := signature.ParseSignature(data)
		if err != nil {
			return
		}
		again, err := signature.ParseSignature(s.Marshal())
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

// Whatever envelope parses has one reading: encoding/json, which matches
// keys case-insensitively and keeps the last of repeated ones, reads the
// same payload and type from it.
func FuzzParseEnvelope(f *testing.F) {
	kp, err := signature.Generate(signature.GenerateOptions{})
	if err != nil {
		f.Fatal(err)
	}
	k, err := signature.ParseSecretKey(kp.SecretKey, "")
	if err != nil {
		f.Fatal(err)
	}
	good, err := k.SignEnvelope(signature.PayloadTypeInToto, []byte(`{"_type":"x"}`))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"payloadType":"a","payload":"e30=","Payload":"e31=","signatures":[{"sig":"AA=="}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, payload, err := signature.ParseEnvelope(data)
		if err != nil {
			return
		}
		var lax signature.Envelope
		if err := json.Unmarshal(data, &lax); err != nil {
			t.Fatalf("accepted, but encoding/json says %v", err)
		}
		if lax.PayloadType != env.PayloadType || lax.Payload != env.Payload || len(payload) == 0 {
			t.Fatalf("two readings: %+v and %+v", env, lax)
		}
	})
}
