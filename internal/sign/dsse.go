package sign

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

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

// Envelope is a DSSE envelope.
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

// PAE is DSSE's pre-authentication encoding, the bytes actually signed:
// "DSSEv1" SP len(type) SP type SP len(payload) SP payload.
func PAE(payloadType string, payload []byte) []byte {
	b := make([]byte, 0, len(payloadType)+len(payload)+32)
	b = append(b, "DSSEv1 "...)
	b = strconv.AppendInt(b, int64(len(payloadType)), 10)
	b = append(b, ' ')
	b = append(b, payloadType...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(payload)), 10)
	b = append(b, ' ')
	return append(b, payload...)
}

// SignEnvelope wraps payload in a DSSE envelope signed with k; the keyid is
// the minisign key id in lowercase hex. The result is indented JSON.
func (k *SecretKey) SignEnvelope(payloadType string, payload []byte) ([]byte, error) {
	env := Envelope{
		PayloadType: payloadType,
		Payload:     base64.StdEncoding.EncodeToString(payload),
		Signatures: []EnvelopeSignature{{
			KeyID: k.id.Hex(),
			Sig:   base64.StdEncoding.EncodeToString(k.sign(PAE(payloadType, payload))),
		}},
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
// payloadType, payload or signature, and payload base64 that does not
// decode canonically are all refused.
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
	payload, err := base64.StdEncoding.Strict().DecodeString(env.Payload)
	if err != nil {
		// DSSE allows URL-safe base64 too.
		if payload, err = base64.URLEncoding.Strict().DecodeString(env.Payload); err != nil {
			return nil, nil, fmt.Errorf("%w: payload is not base64", ErrEnvelopeFormat)
		}
	}
	return &env, payload, nil
}

// CheckPayloadType checks the envelope says what the verifier expects (the
// signature alone does not: a verifier must check the type itself).
func (e *Envelope) CheckPayloadType(want string) error {
	if e.PayloadType != want {
		return fmt.Errorf("%w: %q, want %q", ErrPayloadType, e.PayloadType, want)
	}
	return nil
}

// VerifySignature checks that a signature of the envelope made with pub
// verifies over PAE(payloadType, payload). Signatures with another keyid are
// ignored; a missing keyid is tried.
func (e *Envelope) VerifySignature(pub PublicKey, payload []byte) error {
	if len(pub.Key) != ed25519.PublicKeySize {
		return ErrKeyFormat
	}
	msg := PAE(e.PayloadType, payload)
	for _, s := range e.Signatures {
		if s.KeyID != "" && s.KeyID != pub.ID.Hex() {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if err != nil {
			continue
		}
		if ed25519.Verify(pub.Key, msg, sig) {
			return nil
		}
	}
	return fmt.Errorf("%w (key %s)", ErrNoSignature, pub.ID.Hex())
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
