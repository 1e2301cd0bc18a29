// Package sign holds our minisign (ed25519) keys and the two signature
// formats made with them: minisign's prehashed `ED` signature of an artifact,
// which the minisign CLI verifies, and DSSE envelopes of in-toto statements.
// Keys are read from their contents, never from a path: the configuration
// hands them over as secrets.
package sign

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

// SecretKey is a decrypted minisign secret key. Call Wipe when done with it.
type SecretKey struct {
	id   KeyID
	priv ed25519.PrivateKey
}

// ID is the key's identifier.
func (k *SecretKey) ID() KeyID { return k.id }

// Public returns the matching public key.
func (k *SecretKey) Public() PublicKey {
	return PublicKey{ID: k.id, Key: append(ed25519.PublicKey(nil), k.priv.Public().(ed25519.PublicKey)...)}
}

// Wipe overwrites the key material in memory.
func (k *SecretKey) Wipe() { clear(k.priv) }

func (k *SecretKey) sign(message []byte) []byte { return ed25519.Sign(k.priv, message) }

// String never shows key material.
func (k *SecretKey) String() string { return "minisign secret key " + k.id.String() }

// GoString keeps %#v from printing key material.
func (k *SecretKey) GoString() string { return k.String() }

const (
	secretKeySize = 158 // alg 2, kdf 2, chk alg 2, salt 32, ops 8, mem 8, id 8, key 64, chk 32
	keyOffset     = 54
)

// ParseSecretKey reads a secret key file's contents: unencrypted (`minisign
// -G -W`) or scrypt-encrypted with password, as minisign writes them.
// Errors wrap ErrKeyFormat, ErrPasswordRequired or ErrWrongPassword; they
// never quote the key.
func ParseSecretKey(contents []byte, password string) (*SecretKey, error) {
	text := keyLine(contents)
	if text == nil {
		return nil, fmt.Errorf("secret key: %w", ErrKeyFormat)
	}
	var (
		k   minisign.PrivateKey
		err error
	)
	switch {
	case minisign.IsEncrypted(text) && password == "":
		return nil, ErrPasswordRequired
	case minisign.IsEncrypted(text):
		if k, err = minisign.DecryptKey(password, text); err != nil {
			return nil, ErrWrongPassword
		}
	default:
		if err = k.UnmarshalText(text); err != nil {
			return nil, fmt.Errorf("secret key: %w", ErrKeyFormat)
		}
	}
	return fromMinisign(k)
}

// fromMinisign takes the raw key out of the library's type (its unencrypted
// text form) and checks that the ed25519 seed and public half agree.
func fromMinisign(k minisign.PrivateKey) (*SecretKey, error) {
	text, err := k.MarshalText()
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", ErrKeyFormat)
	}
	raw, err := base64.StdEncoding.DecodeString(string(keyLine(text)))
	defer clear(raw)
	clear(text)
	if err != nil || len(raw) != secretKeySize {
		return nil, fmt.Errorf("secret key: %w", ErrKeyFormat)
	}
	id := KeyID(binary.LittleEndian.Uint64(raw[keyOffset:]))
	priv := ed25519.NewKeyFromSeed(raw[keyOffset+8 : keyOffset+8+ed25519.SeedSize])
	if !bytes.Equal(priv[ed25519.SeedSize:], raw[keyOffset+8+ed25519.SeedSize:keyOffset+8+ed25519.PrivateKeySize]) {
		clear(priv)
		return nil, fmt.Errorf("secret key: public half does not match the seed: %w", ErrKeyFormat)
	}
	return &SecretKey{id: id, priv: priv}, nil
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
	raw, _ := base64.StdEncoding.DecodeString(k.String())
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
