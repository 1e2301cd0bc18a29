//go:build mage

package main

import (
	"fmt"
	"strings"

	"github.com/magefile/mage/mg"

	"github.com/socioprophet/sourceos/internal/attest"
	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/nixcache"
)

// Keys generates the key pairs the pipeline signs with.
type Keys mg.Namespace

// Minisign generates a minisign key pair (release or custom builds): the secret key goes to the path given (0600) or stdout ("-"), encrypted when SOURCEOS_SIGN_PASSWORD is set; the public key to <path>.pub and, as PEM, <path>.pub.pem.
func (Keys) Minisign(secretKeyPath string) error {
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

// Files writes each secret given in the environment to a file of its own (0600) in a new private directory in memory (/dev/shm) and hands the job's later steps <NAME>_FILE through GITHUB_ENV (elsewhere it prints the lines): a lane gives the secrets to this step only, so the steps that build and sign hold paths, never values.
func (Keys) Files() error {
	cfg, err := loadProcess() // the one target that takes secrets from its environment by design
	if err != nil {
		return err
	}
	assigns, err := cfg.WriteKeyFiles(config.KeyFilesParent)
	if err != nil || len(assigns) == 0 {
		return err
	}
	if cfg.GitHubEnv == "" {
		_, err = fmt.Println(strings.Join(assigns, "\n"))
		return err
	}
	if err := config.AppendEnvFile(cfg.GitHubEnv, assigns); err != nil {
		_, _ = config.RemoveKeyFiles(envOf(assigns))
		return err
	}
	return nil
}

// RemoveFiles removes the files keys:files wrote (those the <NAME>_FILE variables name) and their directory; a lane runs it with `if: always()` after the last step that signs.
func (Keys) RemoveFiles() error {
	removed, err := config.RemoveKeyFiles(config.ProcessEnv)
	for _, p := range removed {
		fmt.Println("removed", p)
	}
	return err
}

// envOf looks names up in NAME=value assignments.
func envOf(assigns []string) config.Env {
	return func(name string) (string, bool) {
		for _, a := range assigns {
			if k, v, _ := strings.Cut(a, "="); k == name {
				return v, true
			}
		}
		return "", false
	}
}
