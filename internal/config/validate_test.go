package config_test

import (
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/config"
)

// Values that would lead a write outside its bucket or prefix, or add
// lines to a generated nix.conf, are refused when the configuration loads.
func TestValueChecks(t *testing.T) {
	const pub = "sourceos-cache-1:ZGVhZGJlZWZkZWFkYmVlZmRlYWRiZWVmZGVhZGJlZWY="
	good := map[string]string{
		"GCS_PREFIX":          "gs://sourceos-artifacts/user-builds/u-1/b.2",
		"GITHUB_RUN_ID":       "9876543210",
		"NIX_CACHE_BUCKET":    "sourceos-cache",
		"NIX_CACHE_PREFIX":    "nix-cache/v1",
		"NIX_CACHE_URL":       "https://storage.googleapis.com/sourceos-cache/nix-cache",
		"NIX_CACHE_PUBKEY":    pub,
		"NIX_CACHE_UPSTREAMS": "https://cache.nixos.org http://127.0.0.1:8080/x",
	}
	if _, err := config.Load(envOf(good), noFiles); err != nil {
		t.Fatalf("good values refused: %v", err)
	}
	for _, local := range []string{"out/upload", "/srv/artifacts", "file:///srv/artifacts"} {
		if _, err := config.Load(envOf(map[string]string{"GCS_PREFIX": local}), noFiles); err != nil {
			t.Errorf("GCS_PREFIX=%q (a local directory) refused: %v", local, err)
		}
	}
	bad := []struct{ name, value string }{
		{"NIX_CACHE_PREFIX", "../other/cache"},
		{"NIX_CACHE_PREFIX", "nix-cache/../../x"},
		{"NIX_CACHE_PREFIX", "nix-cache//x"},
		{"NIX_CACHE_PREFIX", "./nix-cache"},
		{"NIX_CACHE_PREFIX", "/nix-cache"},
		{"NIX_CACHE_PREFIX", "nix cache"},
		{"GCS_PREFIX", "gs://bucket/../other-bucket/x"},
		{"GCS_PREFIX", "gs://bucket/a/../../b"},
		{"GCS_PREFIX", "gs://bucket/a/./b"},
		{"GCS_PREFIX", "gs:///prefix"},
		{"GCS_PREFIX", "gs://Bad_Bucket!/x"},
		{"GCS_PREFIX", "s3://bucket/x"},
		{"GCS_PREFIX", "gs://bucket/a\nb"},
		{"NIX_CACHE_BUCKET", "b"},
		{"NIX_CACHE_BUCKET", "bucket/x"},
		{"NIX_CACHE_URL", "https://cache.example\nsubstituters = http://evil"},
		{"NIX_CACHE_URL", "https://cache.example extra-substituters=http://evil"},
		{"NIX_CACHE_URL", "https://cache.example#x"},
		{"NIX_CACHE_URL", "ftp://cache.example"},
		{"NIX_CACHE_URL", "https://user:pw@cache.example"},
		{"NIX_CACHE_URL", "cache.example/x"},
		{"NIX_CACHE_PUBKEY", pub + "\ntrusted-public-keys = evil:AAAA"},
		{"NIX_CACHE_PUBKEY", "evil key:AAAA"},
		{"NIX_CACHE_PUBKEY", "name:bm90MzJieXRlcw=="},
		{"NIX_CACHE_UPSTREAMS", "https://ok.example javascript:alert(1)"},
		{"VERSION", "1.0\u2028injected"},
		{"BUILD_ID", "id\x1b[2J"},
		{"GITHUB_RUN_ID", "123\",\"status\":\"complete"},
	}
	for _, c := range bad {
		_, err := config.Load(envOf(map[string]string{c.name: c.value}), noFiles)
		if err == nil {
			t.Errorf("%s=%q accepted", c.name, c.value)
			continue
		}
		if !strings.Contains(err.Error(), c.name) {
			t.Errorf("%s=%q: error does not name the variable: %v", c.name, c.value, err)
		}
	}
}
