package attest

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/sign"
)

// KeyOptions are what `mage keys:sign` works from.
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

// NewKey is `mage keys:sign <secret-key-path>`: it generates a minisign key
// pair; the secret key goes only to SecretPath or stdout, the public key
// to <SecretPath>.pub and is printed.
func NewKey(o KeyOptions) error {
	if o.SecretPath == "" {
		return errors.New("usage: mage keys:sign <secret-key-path> (or - for stdout)")
	}
	kp, err := sign.Generate(sign.GenerateOptions{Password: o.Password.Reveal()})
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
		if err := sign.WriteSecretKey(o.SecretPath, kp.SecretKey); err != nil {
			return err
		}
		if err := writeNew(o.SecretPath+".pub", kp.PublicKey); err != nil {
			return err
		}
	}
	_, err = fmt.Fprintf(pubOut, "%s\nPublic key (SOURCEOS_SIGN_PUBKEY): %s\nKey ID: %s\nEncrypted: %t\n",
		kp.PublicKey, kp.Public.String(), kp.Public.ID, o.Password.IsSet())
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
