package signature_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/socioprophet/sourceos/internal/signature"
	"github.com/socioprophet/sourceos/internal/testrig"
)

const statement = `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a.iso","digest":{"sha256":"00"}}]}`

// The pre-authentication encoding our envelopes are signed over is the
// one of the DSSE protocol description (its own example).
func TestPAEIsTheSpecs(t *testing.T) {
	got := string(dsse.PAE("http://example.com/HelloWorld", []byte("hello world")))
	if want := "DSSEv1 29 http://example.com/HelloWorld 11 hello world"; got != want {
		t.Errorf("PAE = %q, want %q", got, want)
	}
}

// The envelope has exactly the shape the DSSE envelope spec gives:
// payloadType, payload (standard base64) and signatures of {keyid, sig},
// with sig the raw Ed25519 signature of PAE(payloadType, payload) by the
// key the PEM form carries.
func TestEnvelopeShapeIsDSSE(t *testing.T) {
	kp := generate(t, "")
	env, err := load(t, kp.SecretKey, "").SignEnvelope(signature.PayloadTypeInToto, []byte(statement))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(env, &raw); err != nil {
		t.Fatal(err)
	}
	if len(raw) != 3 || raw["payloadType"] == nil || raw["payload"] == nil || raw["signatures"] == nil {
		t.Fatalf("top-level members: %s", env)
	}
	var e struct {
		PayloadType string
		Payload     string
		Signatures  []map[string]string
	}
	if err := json.Unmarshal(env, &e); err != nil {
		t.Fatal(err)
	}
	payload, err := base64.StdEncoding.Strict().DecodeString(e.Payload)
	if err != nil || string(payload) != statement || e.PayloadType != "application/vnd.in-toto+json" {
		t.Fatalf("payload %q (%v), type %q", payload, err, e.PayloadType)
	}
	if len(e.Signatures) != 1 || len(e.Signatures[0]) != 2 || e.Signatures[0]["keyid"] != kp.Public.ID.Hex() {
		t.Fatalf("signatures: %v", e.Signatures)
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(e.Signatures[0]["sig"])
	if err != nil {
		t.Fatal(err)
	}
	pemKey, err := kp.Public.PEM()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := signature.ParsePEM(pemKey)
	if err != nil {
		t.Fatal(err)
	}
	pae := "DSSEv1 28 application/vnd.in-toto+json " + itoa(len(statement)) + " " + statement
	if !ed25519.Verify(pub, []byte(pae), sig) {
		t.Error("sig is not the Ed25519 signature of the PAE by the PEM key")
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// anyKeyVerifier verifies like cosign's adapter does: it names no key id
// and no public key, so the dsse package tries every signature whatever
// its keyid.
type anyKeyVerifier struct{ pub ed25519.PublicKey }

func (v anyKeyVerifier) Verify(_ context.Context, data, sig []byte) error {
	if !ed25519.Verify(v.pub, data, sig) {
		return errors.New("bad signature")
	}
	return nil
}
func (anyKeyVerifier) KeyID() (string, error)   { return "", nil }
func (anyKeyVerifier) Public() crypto.PublicKey { return nil }

// namedKeyVerifier names its key by an id of its own, as an in-toto key
// file does (the SHA-256 of the key's canonical JSON).
type namedKeyVerifier struct {
	anyKeyVerifier
	id string
}

func (v namedKeyVerifier) KeyID() (string, error) { return v.id, nil }

// What another DSSE verifier needs: one that names no key (cosign's) takes
// our envelope with the key alone; one that names keys by its own id must
// be given ours (the minisign key id in lowercase hex), or it skips the
// signature.
func TestEnvelopeVerifiesWithOtherVerifiers(t *testing.T) {
	kp := generate(t, "")
	raw, err := load(t, kp.SecretKey, "").SignEnvelope(signature.PayloadTypeInToto, []byte(statement))
	if err != nil {
		t.Fatal(err)
	}
	var env dsse.Envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	verify := func(v dsse.Verifier) error {
		ev, err := dsse.NewEnvelopeVerifier(v)
		if err != nil {
			t.Fatal(err)
		}
		_, err = ev.Verify(context.Background(), &env)
		return err
	}
	if err := verify(anyKeyVerifier{kp.Public.Key}); err != nil {
		t.Errorf("a verifier naming no key: %v", err)
	}
	if err := verify(namedKeyVerifier{anyKeyVerifier{kp.Public.Key}, kp.Public.ID.Hex()}); err != nil {
		t.Errorf("a verifier naming our key id: %v", err)
	}
	if err := verify(namedKeyVerifier{anyKeyVerifier{kp.Public.Key}, "sha256-of-another-key-format"}); err == nil {
		t.Error("a verifier naming the key by another id accepted a signature it should skip")
	}
	if err := verify(anyKeyVerifier{generate(t, "").Public.Key}); err == nil {
		t.Error("another key verified the envelope")
	}
}

// The envelope's signature checks out with OpenSSL and the PEM key: PAE
// built by hand from the envelope, `openssl pkeyutl -verify -rawin`.
func TestEnvelopeVerifiesWithOpenSSL(t *testing.T) {
	openssl := testrig.RequireTool(t, "openssl")
	kp := generate(t, "")
	raw, err := load(t, kp.SecretKey, "").SignEnvelope(signature.PayloadTypeInToto, []byte(statement))
	if err != nil {
		t.Fatal(err)
	}
	env, payload, err := signature.ParseEnvelope(raw)
	if err != nil {
		t.Fatal(err)
	}
	pemKey, err := kp.Public.PEM()
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
	dir := t.TempDir()
	pub := writeFile(t, dir, "pub.pem", pemKey)
	sigFile := writeFile(t, dir, "sig.bin", sig)
	run := func(msg []byte) (string, error) {
		in := writeFile(t, dir, "pae.bin", msg)
		out, err := exec.Command(openssl, "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-in", in, "-sigfile", sigFile).CombinedOutput()
		return string(out), err
	}
	if out, err := run(dsse.PAE(env.PayloadType, payload)); err != nil || !strings.Contains(out, "Signature Verified Successfully") {
		t.Errorf("openssl: %v\n%s", err, out)
	}
	if out, err := run(dsse.PAE(env.PayloadType, bytes.ToUpper(payload))); err == nil {
		t.Errorf("openssl verified another payload:\n%s", out)
	}
	// openssl reads the PEM as an ED25519 key.
	out, err := exec.Command(openssl, "pkey", "-pubin", "-in", pub, "-noout", "-text").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ED25519 Public-Key") {
		t.Errorf("openssl pkey: %v\n%s", err, out)
	}
}

func TestPEMRoundTrip(t *testing.T) {
	kp := generate(t, "")
	b, err := kp.Public.PEM()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "-----BEGIN PUBLIC KEY-----\n") {
		t.Errorf("PEM: %s", b)
	}
	got, err := signature.ParsePEM(b)
	if err != nil || !got.Equal(kp.Public.Key) {
		t.Errorf("round trip: %v", err)
	}
	for _, bad := range []string{"", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", string(kp.Public.File())} {
		if _, err := signature.ParsePEM([]byte(bad)); !errors.Is(err, signature.ErrKeyFormat) {
			t.Errorf("%.30q: %v", bad, err)
		}
	}
}
