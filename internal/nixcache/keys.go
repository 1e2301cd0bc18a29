package nixcache

import (
	"crypto/rand"
	"fmt"
	"strings"

	"github.com/nix-community/go-nix/pkg/narinfo/signature"
)

// GenerateKey makes a cache key pair in the format of
// `nix-store --generate-binary-cache-key NAME`: secret "NAME:<base64 of the
// 64-byte ed25519 private key>", public "NAME:<base64 of 32 bytes>".
func GenerateKey(name string) (secret, public string, err error) {
	if name == "" || strings.ContainsAny(name, ": \t\n") {
		return "", "", fmt.Errorf("key name %q: want a non-empty name without ':' or spaces, e.g. cache.example.org-1", name)
	}
	sk, pk, err := signature.GenerateKeypair(name, rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("generate key: %w", err)
	}
	return sk.String(), pk.String(), nil
}

// SubstituterURL is the URL Nix clients substitute from: Options.URL, else
// the public HTTPS URL of the bucket prefix, else file:// of the directory.
func (o Options) SubstituterURL() (string, error) {
	o = o.withDefaults()
	switch {
	case o.URL != "":
		return o.URL, nil
	case o.Bucket != "":
		return "https://storage.googleapis.com/" + o.Bucket + "/" + strings.Trim(o.Prefix, "/"), nil
	case o.Dir != "":
		return "file://" + o.Dir, nil
	}
	return "", &NotConfiguredError{Missing: []string{"NIX_CACHE_URL, NIX_CACHE_BUCKET or NIX_CACHE_DIR"}}
}

// NixConf returns the nix.conf lines that make Nix substitute from the
// cache and trust its key.
func NixConf(o Options) (string, error) {
	url, err := o.SubstituterURL()
	if err != nil {
		return "", err
	}
	pk, err := o.publicKey()
	if err != nil {
		return "", err
	}
	return "extra-substituters = " + url + "\nextra-trusted-public-keys = " + pk.String() + "\n", nil
}
