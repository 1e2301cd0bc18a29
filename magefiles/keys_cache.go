//go:build mage

package main

import (
	"fmt"

	"github.com/socioprophet/sourceos/internal/nixcache"
)

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
