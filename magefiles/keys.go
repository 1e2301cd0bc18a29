//go:build mage

package main

import (
	"fmt"

	"github.com/magefile/mage/mg"

	"github.com/socioprophet/sourceos/internal/attest"
	"github.com/socioprophet/sourceos/internal/nixcache"
)

// Keys generates the key pairs the pipeline signs with.
type Keys mg.Namespace

// Sign generates a minisign key pair for release signing: the secret key goes to the path given (0600) or stdout ("-"), encrypted when SOURCEOS_SIGN_PASSWORD is set; the public key to <path>.pub and, as PEM, <path>.pub.pem.
func (Keys) Sign(secretKeyPath string) error {
	a, err := setup()
	if err != nil {
		return err
	}
	return attest.NewKey(attest.KeyOptions{SecretPath: secretKeyPath, Password: a.Cfg.SignPassword, Stdout: a.Stdout, Stderr: a.Stderr})
}

// Pem prints the public key SOURCEOS_SIGN_PUBKEY as PEM (PKIX, Ed25519), the form cosign, OpenSSL and DSSE verifiers take.
func (Keys) Pem() error {
	a, err := setup()
	if err != nil {
		return err
	}
	return attest.PEM(attest.PEMOptions{PublicKey: a.Cfg.SignPubKey, Stdout: a.Stdout})
}

// Cache generates a Nix binary cache key pair called name and prints NIX_CACHE_SECRET_KEY= and NIX_CACHE_PUBKEY= lines to stdout only (never to a log or file).
func (Keys) Cache(name string) error {
	a, err := setup()
	if err != nil {
		return err
	}
	secret, public, err := nixcache.GenerateKey(name)
	if err != nil {
		return err
	}
	fmt.Fprintln(a.Stderr, "Store NIX_CACHE_SECRET_KEY in your secret manager; it is not written anywhere else.")
	_, err = fmt.Fprintf(a.Stdout, "NIX_CACHE_SECRET_KEY=%s\nNIX_CACHE_PUBKEY=%s\n", secret, public)
	return err
}
