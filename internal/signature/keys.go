// Package signature holds our minisign (ed25519) keys and the two signature
// formats made with them: minisign's prehashed `ED` signature of an artifact,
// which the minisign CLI verifies, and DSSE envelopes of in-toto statements.
// Keys, the .minisig file and signing are aead.dev/minisign's (its private
// key is a crypto.Signer); what is ours is signing and verifying from a
// BLAKE2b-512 digest computed in the read that also gives the SHA-256, and
// the trusted comment that names the file and the build. Keys are read
// from their contents, never from a path: the configuration hands them
// over as secrets.
package signature

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"

	"aead.dev/minisign"
)

// Key errors. A caller tells "the key is unusable" apart from other
// failures with errors.Is.
var (
	ErrKeyFormat        = errors.New("not a minisign key")
	ErrPasswordRequired = errors.New("the secret key is encrypted and no password was given")
	ErrWrongPassword    = errors.New("wrong password for the secret key (or a corrupt key)")
)

// KeyID is minisign's 64-bit key identifier.
type KeyID uint64

// String is the form minisign prints: 16 uppercase hex digits.
func (id KeyID) String() string { return fmt.Sprintf("%016X", uint64(id)) }

// Hex is the DSSE keyid: 16 lowercase hex digits.
func (id KeyID) Hex() string { return fmt.Sprintf("%016x", uint64(id)) }

// PublicKey is a minisign public key.
type PublicKey struct {
	ID  KeyID
	Key ed25519.PublicKey
}

// SecretKey is a decrypted minisign secret key: the library's, which
// signs as a crypto.Signer. Call Wipe when done with it.
type SecretKey struct {
	priv minisign.PrivateKey
}

// ID is the key's identifier.
func (k *SecretKey) ID() KeyID { return KeyID(k.priv.ID()) }

// Public returns the matching public key.
func (k *SecretKey) Public() PublicKey {
	p, _ := fromMinisignPublic(k.priv.Public().(minisign.PublicKey))
	return p
}

// Wipe overwrites this copy of the key material (the library's methods
// take the key by value, so copies made while signing are the Go
// runtime's to reclaim).
func (k *SecretKey) Wipe() { k.priv = minisign.PrivateKey{} }

// String never shows key material.
func (k *SecretKey) String() string { return "minisign secret key " + k.ID().String() }

// GoString keeps %#v from printing key material.
func (k *SecretKey) GoString() string { return k.String() }

// ParseSecretKey reads a secret key file's contents: unencrypted (`minisign
// -G -W`) or scrypt-encrypted with password, as minisign writes them.
// Errors wrap ErrKeyFormat, ErrPasswordRequired or ErrWrongPassword; they
// never quote the key.
func ParseSecretKey(contents []byte, password string) (*SecretKey, error) {
	text := keyLine(contents)
	if text == nil {
		return nil, fmt.Errorf("secret key: %w", ErrKeyFormat)
	}
	k := &SecretKey{}
	switch {
	case minisign.IsEncrypted(text) && password == "":
		return nil, ErrPasswordRequired
	case minisign.IsEncrypted(text):
		priv, err := minisign.DecryptKey(password, text)
		if err != nil {
			return nil, ErrWrongPassword
		}
		k.priv = priv
	default:
		if err := k.priv.UnmarshalText(text); err != nil {
			return nil, fmt.Errorf("secret key: %w", ErrKeyFormat)
		}
	}
	if err := k.selfTest(); err != nil {
		k.Wipe()
		return nil, err
	}
	return k, nil
}

// selfTest signs and verifies with the public half: a key file whose
// seed and public half disagree (corrupt, or pieced together) signs what
// its published public key never verifies.
func (k *SecretKey) selfTest() error {
	msg := []byte("sourceos key self-test")
	sig, err := k.ed25519(msg)
	if err != nil || edVerify(k.Public(), msg, sig[:], ErrBadSignature) != nil {
		return fmt.Errorf("secret key: public half does not match the seed: %w", ErrKeyFormat)
	}
	return nil
}

// keyLine returns the base64 line of a key file's contents: the first line
// that is not an untrusted comment, trimmed.
func keyLine(contents []byte) []byte {
	for _, line := range bytes.Split(contents, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || bytes.HasPrefix(line, []byte("untrusted comment:")) {
			continue
		}
		return line
	}
	return nil
}

// ParsePublicKey reads a public key: the bare `RW…` line or a .pub file's
// contents.
func ParsePublicKey(s string) (PublicKey, error) {
	line := keyLine([]byte(s))
	var k minisign.PublicKey
	if line == nil || k.UnmarshalText(line) != nil {
		return PublicKey{}, fmt.Errorf("public key: %w", ErrKeyFormat)
	}
	return fromMinisignPublic(k)
}

// fromMinisignPublic takes the key id and the raw Ed25519 key (needed for
// a digest, a DSSE envelope, PEM) out of the library's public key, from
// its `RW…` form: algorithm (2 bytes), key id (8), key (32).
func fromMinisignPublic(k minisign.PublicKey) (PublicKey, error) {
	raw, err := base64.StdEncoding.DecodeString(k.String())
	if err != nil || len(raw) != 10+ed25519.PublicKeySize {
		return PublicKey{}, fmt.Errorf("public key: %w", ErrKeyFormat)
	}
	return PublicKey{ID: KeyID(k.ID()), Key: ed25519.PublicKey(raw[10:])}, nil
}

// String is the `RW…` line.
func (p PublicKey) String() string {
	b := make([]byte, 0, 42)
	b = binary.LittleEndian.AppendUint16(b, minisign.EdDSA)
	b = binary.LittleEndian.AppendUint64(b, uint64(p.ID))
	b = append(b, p.Key...)
	return base64.StdEncoding.EncodeToString(b)
}

// File is the contents of a minisign .pub file.
func (p PublicKey) File() []byte {
	return []byte("untrusted comment: minisign public key " + p.ID.String() + "\n" + p.String() + "\n")
}

// Equal reports whether p and o are the same key.
func (p PublicKey) Equal(o PublicKey) bool { return p.ID == o.ID && p.Key.Equal(o.Key) }
