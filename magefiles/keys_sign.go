//go:build mage

package main

import "github.com/socioprophet/sourceos/internal/release"

// Sign generates a minisign key pair for release signing: the secret key goes to the path given (0600) or stdout ("-"), encrypted when SOURCEOS_SIGN_PASSWORD is set.
func (Keys) Sign(secretKeyPath string) error {
	a, err := setup()
	if err != nil {
		return err
	}
	return release.KeysCommand(a, secretKeyPath)
}
