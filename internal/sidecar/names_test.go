package sidecar_test

import (
	"testing"

	"github.com/socioprophet/sourceos/internal/sidecar"
)

func TestRef(t *testing.T) {
	for in, want := range map[[2]string]string{
		{"", "a.iso.minisig"}:                    "a.iso.minisig",
		{"gs://b/p", "a.iso.minisig"}:            "https://storage.googleapis.com/b/p/a.iso.minisig",
		{"gs://b/p/", "a b"}:                     "https://storage.googleapis.com/b/p/a%20b",
		{"https://cdn.example/r", "a.sbom.json"}: "https://cdn.example/r/a.sbom.json",
	} {
		if got := sidecar.Ref(in[0], in[1]); got != want {
			t.Errorf("Ref(%q, %q) = %q, want %q", in[0], in[1], got, want)
		}
	}
}
