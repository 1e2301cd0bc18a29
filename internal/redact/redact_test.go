package redact_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/redact"
)

func TestRedactsWholeValuesLinesAndKeyParts(t *testing.T) {
	const minisignKey = "untrusted comment: minisign encrypted secret key\nRWRTY0IyNzQ5c2VjcmV0LWJ5dGVzLWhlcmUtMDEyMzQ1Njc4OQ=="
	const nixKey = "cache.example-1:c2VjcmV0LWNhY2hlLWtleS1ieXRlcw=="
	r := redact.New(minisignKey, nixKey, "short")
	cases := map[string]string{
		"whole multi-line value": "key=" + minisignKey,
		"key line alone":         "got RWRTY0IyNzQ5c2VjcmV0LWJ5dGVzLWhlcmUtMDEyMzQ1Njc4OQ== from env",
		"nix key":                "NIX_CACHE_SECRET_KEY=" + nixKey,
		"base64 part of nix key": "sig key c2VjcmV0LWNhY2hlLWtleS1ieXRlcw== failed",
	}
	for name, in := range cases {
		out := r.String(in)
		if strings.Contains(out, "c2VjcmV0") || strings.Contains(out, "RWRTY0Iy") {
			t.Errorf("%s: not redacted: %q", name, out)
		}
		if !strings.Contains(out, redact.Mask) {
			t.Errorf("%s: no mask in %q", name, out)
		}
	}
	// Public comment lines and short values are left alone: masking them
	// would hide ordinary words.
	if out := r.String("untrusted comment: minisign encrypted secret key; short"); strings.Contains(out, redact.Mask) {
		t.Errorf("masked public text: %q", out)
	}
}

func TestWriterAndNil(t *testing.T) {
	var b bytes.Buffer
	w := redact.New("supersecretvalue").Writer(&b)
	n, err := w.Write([]byte("x supersecretvalue y\n"))
	if err != nil || n != len("x supersecretvalue y\n") {
		t.Fatalf("write: %d, %v", n, err)
	}
	if b.String() != "x "+redact.Mask+" y\n" {
		t.Fatalf("got %q", b.String())
	}
	var nilR *redact.Redactor
	if nilR.String("abc") != "abc" {
		t.Fatal("nil redactor changed text")
	}
}
