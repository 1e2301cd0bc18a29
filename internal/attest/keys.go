package attest

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/sidecar"
	"github.com/socioprophet/sourceos/internal/signature"
)

// KeyOptions are what `mage keys:minisign` works from.
type KeyOptions struct {
	// SecretPath receives the secret key (created 0600, never
	// overwritten); "-" writes it to Stdout instead.
	SecretPath string
	// Password, when set, encrypts the secret key.
	Password config.Secret
	// Stdout receives the secret key when SecretPath is "-", else the
	// public key; Stderr receives the public key when Stdout holds the
	// secret.
	Stdout, Stderr io.Writer
}

// NewKey is `mage keys:minisign <secret-key-path>`: it generates a minisign key
// pair; the secret key goes only to SecretPath or stdout, the public key
// to <SecretPath>.pub (minisign's form) and <SecretPath>.pub.pem (PEM, for
// cosign, OpenSSL and DSSE verifiers) and is printed in both forms.
func NewKey(o KeyOptions) error {
	if o.SecretPath == "" {
		return errors.New("usage: mage keys:minisign <secret-key-path> (or - for stdout)")
	}
	kp, err := signature.Generate(signature.GenerateOptions{Password: o.Password.Reveal()})
	if err != nil {
		return err
	}
	defer clear(kp.SecretKey)
	pubOut := o.Stdout
	if o.SecretPath == "-" {
		pubOut = o.Stderr
		if _, err := o.Stdout.Write(kp.SecretKey); err != nil {
			return fmt.Errorf("write secret key: %w", err)
		}
	} else {
		if err := signature.WriteSecretKey(o.SecretPath, kp.SecretKey); err != nil {
			return err
		}
		if err := writeNew(o.SecretPath+".pub", kp.PublicKey); err != nil {
			return err
		}
	}
	pemKey, err := kp.Public.PEM()
	if err != nil {
		return err
	}
	if o.SecretPath != "-" {
		if err := writeNew(o.SecretPath+".pub.pem", pemKey); err != nil {
			return err
		}
	}
	_, err = fmt.Fprintf(pubOut, "%s\nPublic key (SOURCEOS_SIGN_PUBKEY): %s\nKey ID: %s (DSSE keyid %s)\nEncrypted: %t\n\nThe same public key as PEM (cosign --key, openssl):\n%s",
		kp.PublicKey, kp.Public.String(), kp.Public.ID, kp.Public.ID.Hex(), o.Password.IsSet(), pemKey)
	return err
}

// PEMOptions are what `mage keys:pem` works from.
type PEMOptions struct {
	// PublicKey is SOURCEOS_SIGN_PUBKEY: the `RW…` line, a .pub file's
	// contents or a path to a .pub file.
	PublicKey string
	Stdout    io.Writer
}

// PEM is `mage keys:pem`: it prints the minisign public key as PEM (PKIX
// SubjectPublicKeyInfo of the Ed25519 key), the form other tools take.
func PEM(o PEMOptions) error {
	pub, err := sidecar.LoadPublicKey(o.PublicKey)
	if err != nil {
		return err
	}
	b, err := pub.PEM()
	if err != nil {
		return err
	}
	_, err = o.Stdout.Write(b)
	return err
}

func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("write public key: %w", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write public key: %w", err)
	}
	return nil
}
