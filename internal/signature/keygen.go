package signature

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"

	"aead.dev/minisign"
)

// KeyPair is a newly generated key pair, as the contents of the two files
// minisign reads (`minisign.pub` and `minisign.key`).
type KeyPair struct {
	Public    PublicKey
	PublicKey []byte // .pub file contents
	SecretKey []byte // secret key file contents; treat as a secret
}

// GenerateOptions says how to generate a key pair.
type GenerateOptions struct {
	// Password encrypts the secret key with scrypt as minisign does (about
	// 1 GiB of memory and a few seconds); empty writes an unencrypted key
	// like `minisign -G -W`.
	Password string
	// Rand is the entropy source; nil means crypto/rand.
	Rand io.Reader
}

// Generate makes a key pair the minisign CLI loads.
func Generate(opts GenerateOptions) (*KeyPair, error) {
	r := opts.Rand
	if r == nil {
		r = rand.Reader
	}
	pub, priv, err := minisign.GenerateKey(r)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	var sec []byte
	if opts.Password != "" {
		sec, err = minisign.EncryptKey(opts.Password, priv)
	} else {
		sec, err = priv.MarshalText()
	}
	if err != nil {
		return nil, fmt.Errorf("encode secret key: %w", err)
	}
	if len(sec) > 0 && sec[len(sec)-1] != '\n' {
		sec = append(sec, '\n')
	}
	p, err := ParsePublicKey(pub.String())
	if err != nil {
		return nil, err
	}
	return &KeyPair{Public: p, PublicKey: p.File(), SecretKey: sec}, nil
}

// ErrExists is returned when the secret key file already exists.
var ErrExists = errors.New("file exists; refusing to overwrite a secret key")

// WriteSecretKey writes a secret key to a new file readable by its owner
// only. It never overwrites an existing file.
func WriteSecretKey(path string, contents []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s: %w", path, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("write secret key: %w", err)
	}
	if _, err := f.Write(contents); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("write secret key: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("write secret key: %w", err)
	}
	return nil
}
