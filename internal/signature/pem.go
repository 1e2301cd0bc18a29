package signature

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

// PEM is the public key as other tools read it: a PEM "PUBLIC KEY" block
// holding the PKIX SubjectPublicKeyInfo of the Ed25519 key (RFC 8410), the
// form of `openssl pkey -pubout` and of cosign's --key. It is the same key
// minisign verifies with; only the encoding differs.
func (p PublicKey) PEM() ([]byte, error) {
	if len(p.Key) != ed25519.PublicKeySize {
		return nil, ErrKeyFormat
	}
	der, err := x509.MarshalPKIXPublicKey(p.Key)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ParsePEM reads a PEM "PUBLIC KEY" block holding an Ed25519 key (a PEM
// file carries no minisign key id).
func ParsePEM(data []byte) (ed25519.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("public key: no PEM PUBLIC KEY block: %w", ErrKeyFormat)
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	ed, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("public key: %T, not Ed25519: %w", k, ErrKeyFormat)
	}
	return ed, nil
}
