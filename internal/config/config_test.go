package config_test

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/testrig"
)

func envOf(m map[string]string) config.Env {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func noFiles(string) ([]byte, error) { return nil, errors.New("no files in this test") }

func TestDefaults(t *testing.T) {
	c, err := config.Load(envOf(nil), noFiles)
	if err != nil {
		t.Fatal(err)
	}
	if c.Flake != "." || c.Edition != "" || c.Arch != "x86_64" || c.Target != "iso" || c.CachePrefix != "nix-cache" || c.CacheCompression != "zstd" {
		t.Errorf("unexpected defaults: %+v", c)
	}
	if len(c.CacheUpstreams) != 1 || c.CacheUpstreams[0] != "https://cache.nixos.org" {
		t.Errorf("upstreams = %v", c.CacheUpstreams)
	}
	if c.CacheSecretKey.IsSet() || c.SignSecretKey.IsSet() {
		t.Error("secrets set by default")
	}
}

func TestValuesAndTypes(t *testing.T) {
	c, err := config.Load(envOf(map[string]string{
		"EDITION": "server", "NIX_CACHE_STRICT": "1", "NIX_CACHE_UPSTREAMS": "", "NIX_CACHE_JOBS": "4",
		"SOURCEOS_REQUIRE_SIGNATURE": "true",
	}), noFiles)
	if err != nil {
		t.Fatal(err)
	}
	if c.Edition != "server" || !c.CacheStrict || len(c.CacheUpstreams) != 0 || c.CacheJobs != 4 || !c.RequireSignature {
		t.Errorf("got %+v", c)
	}
}

func TestBadValuesAreReportedTogether(t *testing.T) {
	_, err := config.Load(envOf(map[string]string{"NIX_CACHE_STRICT": "maybe", "NIX_CACHE_JOBS": "-2"}), noFiles)
	if err == nil {
		t.Fatal("want error")
	}
	for _, want := range []string{"NIX_CACHE_STRICT", "maybe", "NIX_CACHE_JOBS"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestSecretFromFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(p, []byte("cache-1:abcdefghijklmnop\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(envOf(map[string]string{"NIX_CACHE_SECRET_KEY_FILE": p}), os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(c.CacheSecretKey.Reveal()); got != "cache-1:abcdefghijklmnop" {
		t.Errorf("secret = %q", got)
	}
	_, err = config.Load(envOf(map[string]string{"NIX_CACHE_SECRET_KEY_FILE": p, "NIX_CACHE_SECRET_KEY": "x"}), os.ReadFile)
	if err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("both given: err = %v", err)
	}
	_, err = config.Load(envOf(map[string]string{"NIX_CACHE_SECRET_KEY_FILE": "/nonexistent/key"}), os.ReadFile)
	if err == nil || !strings.Contains(err.Error(), "NIX_CACHE_SECRET_KEY_FILE") {
		t.Errorf("missing file: err = %v", err)
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	const key = "untrusted comment: k\nRWQsupersecretkeymaterial0123456789"
	c, err := config.Load(envOf(map[string]string{"SOURCEOS_SIGN_SECRET_KEY": key, "SOURCEOS_SIGN_PASSWORD": "hunter2hunter2"}), noFiles)
	if err != nil {
		t.Fatal(err)
	}
	var show strings.Builder
	if err := c.Show(&show); err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(c)
	for name, out := range map[string]string{
		"show": show.String(), "%v": fmt.Sprintf("%v", c), "%+v": fmt.Sprintf("%+v", c), "%#v": fmt.Sprintf("%#v", c), "json": string(js),
	} {
		if strings.Contains(out, "supersecret") || strings.Contains(out, "hunter2") {
			t.Errorf("%s prints a secret: %s", name, out)
		}
	}
	if !strings.Contains(show.String(), "SOURCEOS_SIGN_SECRET_KEY") {
		t.Error("show omits the secret's name")
	}
	if got := c.Redactor().String("pw=hunter2hunter2 key=RWQsupersecretkeymaterial0123456789"); strings.Contains(got, "hunter2") || strings.Contains(got, "supersecret") {
		t.Errorf("redactor leaves %q", got)
	}
}

func TestEveryVarDeclaredOnceWithDescription(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range config.Vars {
		if seen[v.Name] {
			t.Errorf("%s declared twice", v.Name)
		}
		seen[v.Name] = true
		if v.Description == "" {
			t.Errorf("%s has no description", v.Name)
		}
	}
	for _, name := range []string{"NIX_CACHE_BUCKET", "NIX_CACHE_SECRET_KEY", "NIX_CACHE_URL", "NIX_CACHE_PUBKEY",
		"SOURCEOS_SIGN_SECRET_KEY", "SOURCEOS_SIGN_PUBKEY", "SOURCEOS_REQUIRE_SIGNATURE", "OUT", "TARGET", "EDITION",
		"ARCH", "VERSION", "SOURCE_REV", "SOURCE_REPO", "BUILD_ID", "BUILD_UID", "GCS_PREFIX", "SOURCEOS_FLAKE"} {
		if !seen[name] {
			t.Errorf("old pipeline variable %s not declared", name)
		}
	}
}

var update = flag.Bool("update", false, "rewrite docs/configuration.md's table")

// docs/configuration.md's table is generated from Vars; this keeps them in
// sync. Regenerate it with: go test ./internal/config -run Table -update
func TestTableInSync(t *testing.T) {
	testrig.GeneratedSection(t, "../../docs/configuration.md", "config", config.MarkdownTable(), *update)
}

// The limits of verify by URL are durations and a rate with defaults; a
// value that is not a positive duration is refused, naming the variable.
func TestVerifyLimits(t *testing.T) {
	c, err := config.Load(envOf(nil), noFiles)
	if err != nil {
		t.Fatal(err)
	}
	if c.VerifyTimeout != config.DefaultVerifyTimeout || c.VerifyHeaderTimeout != config.DefaultVerifyHeaderTimeout ||
		c.VerifyIdleTimeout != config.DefaultVerifyIdleTimeout || c.VerifyMinRate != config.DefaultVerifyMinRate {
		t.Errorf("defaults: %v %v %v %v", c.VerifyTimeout, c.VerifyHeaderTimeout, c.VerifyIdleTimeout, c.VerifyMinRate)
	}
	c, err = config.Load(envOf(map[string]string{"SOURCEOS_VERIFY_TIMEOUT": "90m", "SOURCEOS_VERIFY_HEADER_TIMEOUT": "1m30s",
		"SOURCEOS_VERIFY_IDLE_TIMEOUT": "500ms", "SOURCEOS_VERIFY_MIN_RATE": "1"}), noFiles)
	if err != nil {
		t.Fatal(err)
	}
	if c.VerifyTimeout != 90*time.Minute || c.VerifyHeaderTimeout != 90*time.Second || c.VerifyIdleTimeout != 500*time.Millisecond || c.VerifyMinRate != 1 {
		t.Errorf("got %v %v %v %v", c.VerifyTimeout, c.VerifyHeaderTimeout, c.VerifyIdleTimeout, c.VerifyMinRate)
	}
	var show strings.Builder
	if err := c.Show(&show); err != nil || !strings.Contains(show.String(), "1h30m ") || !strings.Contains(show.String(), "1m30s ") {
		t.Errorf("show: %v\n%s", err, show.String())
	}
	for _, bad := range []struct{ name, value string }{
		{"SOURCEOS_VERIFY_TIMEOUT", "0s"}, {"SOURCEOS_VERIFY_TIMEOUT", "-5m"}, {"SOURCEOS_VERIFY_HEADER_TIMEOUT", "30"},
		{"SOURCEOS_VERIFY_IDLE_TIMEOUT", "forever"}, {"SOURCEOS_VERIFY_MIN_RATE", "0"}, {"SOURCEOS_VERIFY_MIN_RATE", "2000000"},
	} {
		if _, err := config.Load(envOf(map[string]string{bad.name: bad.value}), noFiles); err == nil || !strings.Contains(err.Error(), bad.name) {
			t.Errorf("%s=%q: %v", bad.name, bad.value, err)
		}
	}
}
