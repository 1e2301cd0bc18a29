package signature

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/socioprophet/sourceos/internal/strictjson"
)

// PayloadTypeInToto is the DSSE payload type of an in-toto statement.
const PayloadTypeInToto = "application/vnd.in-toto+json"

// DSSE errors.
var (
	ErrEnvelopeFormat = errors.New("not a DSSE envelope")
	ErrPayloadType    = errors.New("unexpected DSSE payloadType")
	ErrNoSignature    = errors.New("no DSSE signature by this key verifies")
)

// Envelope is a DSSE envelope as read strictly (see ParseEnvelope). Making
// and checking signatures is left to secure-systems-lab's dsse package,
// the implementation in-toto's and sigstore's Go tools use.
type Envelope struct {
	PayloadType string              `json:"payloadType"`
	Payload     string              `json:"payload"`
	Signatures  []EnvelopeSignature `json:"signatures"`
}

// EnvelopeSignature is one signature of an envelope.
type EnvelopeSignature struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"`
}

// library is the envelope as the dsse package holds it.
func (e *Envelope) library() *dsse.Envelope {
	out := &dsse.Envelope{PayloadType: e.PayloadType, Payload: e.Payload}
	for _, s := range e.Signatures {
		out.Signatures = append(out.Signatures, dsse.Signature{KeyID: s.KeyID, Sig: s.Sig})
	}
	return out
}

// envelopeSigner is a SecretKey as the dsse package signs with: Ed25519
// over the pre-authentication encoding, keyid the minisign key id in
// lowercase hex.
type envelopeSigner struct{ k *SecretKey }

func (s envelopeSigner) Sign(_ context.Context, pae []byte) ([]byte, error) {
	sig, err := s.k.ed25519(pae)
	return sig[:], err
}
func (s envelopeSigner) KeyID() (string, error) { return s.k.ID().Hex(), nil }

// envelopeVerifier is a PublicKey as the dsse package verifies with. Its
// KeyID makes the package skip signatures that name another key; one with
// no keyid is tried.
type envelopeVerifier struct{ pub PublicKey }

func (v envelopeVerifier) Verify(_ context.Context, pae, sig []byte) error {
	if !ed25519.Verify(v.pub.Key, pae, sig) {
		return ErrNoSignature
	}
	return nil
}
func (v envelopeVerifier) KeyID() (string, error)   { return v.pub.ID.Hex(), nil }
func (v envelopeVerifier) Public() crypto.PublicKey { return v.pub.Key }

// SignEnvelope wraps payload in a DSSE envelope signed with k; the keyid is
// the minisign key id in lowercase hex. The result is indented JSON.
func (k *SecretKey) SignEnvelope(payloadType string, payload []byte) ([]byte, error) {
	signer, err := dsse.NewEnvelopeSigner(envelopeSigner{k})
	if err != nil {
		return nil, fmt.Errorf("dsse: %w", err)
	}
	env, err := signer.SignPayload(context.Background(), payloadType, payload)
	if err != nil {
		return nil, fmt.Errorf("dsse: %w", err)
	}
	out, err := json.MarshalIndent(env, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("dsse: %w", err)
	}
	return append(out, '\n'), nil
}

// ParseEnvelope reads an envelope strictly and decodes its payload. Every
// reader must see the same statement, so a member given twice or in
// another case ("Payload"), a member DSSE does not define, a missing
// payloadType, payload or signature, and payload or signature base64 that
// does not decode canonically are all refused (the dsse package, like
// most readers, decodes leniently; what reaches it here has one reading).
func ParseEnvelope(data []byte) (*Envelope, []byte, error) {
	var env Envelope
	if err := strictjson.Unmarshal(data, &env); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrEnvelopeFormat, err)
	}
	switch {
	case env.PayloadType == "":
		return nil, nil, fmt.Errorf("%w: no payloadType", ErrEnvelopeFormat)
	case env.Payload == "":
		return nil, nil, fmt.Errorf("%w: no payload", ErrEnvelopeFormat)
	case len(env.Signatures) == 0:
		return nil, nil, fmt.Errorf("%w: no signatures", ErrEnvelopeFormat)
	}
	payload, err := decodeBase64(env.Payload)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: payload is not base64", ErrEnvelopeFormat)
	}
	for i, s := range env.Signatures {
		if _, err := decodeBase64(s.Sig); err != nil {
			return nil, nil, fmt.Errorf("%w: signature %d is not base64", ErrEnvelopeFormat, i)
		}
	}
	return &env, payload, nil
}

// decodeBase64 decodes standard or (as DSSE allows) URL-safe base64,
// strictly: no line breaks, no stray padding bits.
func decodeBase64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		b, err = base64.URLEncoding.Strict().DecodeString(s)
	}
	return b, err
}

// CheckPayloadType checks the envelope says what the verifier expects (the
// signature alone does not: a verifier must check the type itself).
func (e *Envelope) CheckPayloadType(want string) error {
	if e.PayloadType != want {
		return fmt.Errorf("%w: %q, want %q", ErrPayloadType, e.PayloadType, want)
	}
	return nil
}

// VerifySignature checks, with the dsse package, that a signature of the
// envelope made with pub verifies over PAE(payloadType, payload), and that
// the payload it verified is payload (as ParseEnvelope decoded it).
// Signatures with another keyid are ignored; a missing keyid is tried.
func (e *Envelope) VerifySignature(pub PublicKey, payload []byte) error {
	if len(pub.Key) != ed25519.PublicKeySize {
		return ErrKeyFormat
	}
	v, err := dsse.NewEnvelopeVerifier(envelopeVerifier{pub})
	if err != nil {
		return fmt.Errorf("dsse: %w", err)
	}
	_, verified, err := v.VerifyAndDecode(context.Background(), e.library())
	if err != nil {
		return fmt.Errorf("%w (key %s): %v", ErrNoSignature, pub.ID.Hex(), err)
	}
	if !bytes.Equal(verified, payload) {
		return fmt.Errorf("%w (key %s): the signed payload is not the one decoded", ErrNoSignature, pub.ID.Hex())
	}
	return nil
}

// VerifyEnvelope parses an envelope, checks its payload type and signature,
// and returns the payload.
func VerifyEnvelope(pub PublicKey, data []byte, payloadType string) ([]byte, error) {
	env, payload, err := ParseEnvelope(data)
	if err != nil {
		return nil, err
	}
	if err := env.CheckPayloadType(payloadType); err != nil {
		return nil, err
	}
	if err := env.VerifySignature(pub, payload); err != nil {
		return nil, err
	}
	return payload, nil
}
