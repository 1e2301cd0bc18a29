package image_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/socioprophet/sourceos/internal/buildrecord"
	"github.com/socioprophet/sourceos/internal/image"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// newCustomRig is the rig of a custom build: the same fixture, bucket and
// cache, and no key at all (a custom build refuses to start with one).
func newCustomRig(t *testing.T) *rig {
	r := newRig(t)
	for _, k := range []string{"SOURCEOS_SIGN_SECRET_KEY", "NIX_CACHE_SECRET_KEY"} {
		delete(r.env, k)
	}
	r.env["BUILD_UID"] = "user-7"
	return r
}

func writeSpec(t *testing.T, spec map[string]any) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "spec.json")
	js, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, p, string(js))
	return p
}

// build:custom builds in the sandbox and leaves an unsigned image and its
// build record, uploaded, for the trusted signer; it pushes nothing to the
// cache.
func TestBuildCustomEndToEnd(t *testing.T) {
	r := newCustomRig(t)
	specPath := writeSpec(t, map[string]any{"edition": "server", "arch": "x86_64", "hostname": "web-01",
		"packages": []string{"htop"}, "services": []string{"openssh"}, "users": []map[string]any{{"name": "alice", "groups": []string{"wheel"}}}})
	sum, err := customBuild(t, r.deps(), specPath)
	if err != nil {
		t.Fatalf("build:custom: %v\n%s", err, r.log.String())
	}
	if sum.Signed || sum.Cache != nil {
		t.Errorf("custom build signed=%v cache=%+v: it must do neither", sum.Signed, sum.Cache)
	}
	cfgJSON, err := os.ReadFile(filepath.Join(sum.Outputs["system"], "config", "spec.json"))
	if err != nil || !strings.Contains(string(cfgJSON), `"hostname":"web-01"`) {
		t.Fatalf("spec not in the system closure: %s %v", cfgJSON, err)
	}
	// Named as a custom build, never as the release of its edition.
	iso := "sourceos-custom-server-x86_64-user-7-b-42.iso"
	f, err := os.Open(filepath.Join(r.out, iso+buildrecord.Ext))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rec, err := buildrecord.Read(f)
	if err != nil {
		t.Fatalf("build record: %v", err)
	}
	raw, _ := os.ReadFile(specPath)
	sha := sha256.Sum256(raw)
	if rec.Artifact != iso || len(rec.Files) != 1 || rec.Files[0].Name != iso || rec.Files[0].SHA256 != sum.Artifacts[0].SHA256 ||
		rec.StorePaths["system"] != sum.Outputs["system"] || len(rec.Closure) != sum.Closure ||
		!strings.Contains(string(rec.Spec), `"web-01"`) || rec.SpecSHA256 != hex.EncodeToString(sha[:]) ||
		rec.FlakeAttr != "packages.x86_64-linux.custom-iso" {
		t.Errorf("build record does not describe the build: %+v", rec)
	}
	if got, want := strings.Join(r.objects(), " "), iso+" "+iso+buildrecord.Ext; got != want {
		t.Errorf("uploaded %q, want %q", got, want)
	}
	if objs, _, err := r.gcs.Server.ListObjectsWithOptions("cache", fakestorage.ListOptions{}); err != nil || len(objs) != 0 {
		t.Errorf("a custom build pushed %d objects to the cache (%v)", len(objs), err)
	}
	for _, phase := range []string{"preflight: nix sandbox", "sandbox = true", "write build record"} {
		if !strings.Contains(r.log.String(), phase) {
			t.Errorf("log lacks %q", phase)
		}
	}
}

// A key in reach of a custom build (in its environment or through a _FILE
// variable) stops it before Nix runs.
func TestBuildCustomRefusesKeys(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "cache.key")
	for name, set := range map[string]func(r *rig){
		"sign key":       func(r *rig) { r.env["SOURCEOS_SIGN_SECRET_KEY"] = "untrusted comment: x\nRWQ..." },
		"cache key file": func(r *rig) { writeFile(t, keyFile, "c:AAAA\n"); r.env["NIX_CACHE_SECRET_KEY_FILE"] = keyFile },
		"password":       func(r *rig) { r.env["SOURCEOS_SIGN_PASSWORD"] = "pw" },
	} {
		t.Run(name, func(t *testing.T) {
			r := newCustomRig(t)
			set(r)
			_, err := customBuild(t, r.deps(), writeSpec(t, map[string]any{"edition": "edge", "arch": "x86_64", "hostname": "h"}))
			if !errors.Is(err, image.ErrKeysInUntrustedBuild) {
				t.Fatalf("want ErrKeysInUntrustedBuild, got %v", err)
			}
			if strings.Contains(r.log.String(), "+ nix") {
				t.Errorf("nix ran:\n%s", r.log.String())
			}
		})
	}
}

// Nix configured to build outside its sandbox (or to fall back silently)
// does not get user code to build.
func TestBuildCustomNeedsTheSandbox(t *testing.T) {
	for name, conf := range map[string]string{
		"sandbox off":     "sandbox = false\n",
		"sandbox relaxed": "sandbox = relaxed\n",
		"silent fallback": "sandbox = true\nsandbox-fallback = true\n",
		"post-build hook": "post-build-hook = /bin/true\n",
	} {
		t.Run(name, func(t *testing.T) {
			r := newCustomRig(t)
			t.Setenv("NIX_CONFIG", testrig.NixConfig+conf)
			_, err := customBuild(t, r.deps(), writeSpec(t, map[string]any{"edition": "edge", "arch": "x86_64", "hostname": "h"}))
			if !errors.Is(err, image.ErrNoSandbox) && !errors.Is(err, image.ErrNixPublishes) {
				t.Fatalf("want ErrNoSandbox or ErrNixPublishes, got %v", err)
			}
			if strings.Contains(r.log.String(), "nix build system") {
				t.Error("the build started")
			}
		})
	}
}

func TestBuildCustomRefusesHostileSnippet(t *testing.T) {
	r := newCustomRig(t)
	r.env["SOURCEOS_ALLOW_MODULE_SNIPPET"] = "1"
	specPath := writeSpec(t, map[string]any{"edition": "edge", "arch": "x86_64", "hostname": "h",
		"moduleSnippet": `{ ... }: { x = builtins.readFile /etc/shadow; }`})
	_, err := customBuild(t, r.deps(), specPath)
	if err == nil || !strings.Contains(err.Error(), "builtins") || !strings.Contains(err.Error(), "/etc/shadow") {
		t.Fatalf("want snippet refused, got %v", err)
	}
	if entries, _ := os.ReadDir(r.out); len(entries) != 0 {
		t.Errorf("OUT not empty after refusal: %v", entries)
	}
}

func TestBuildCustomWithSnippet(t *testing.T) {
	r := newCustomRig(t)
	r.env["SOURCEOS_ALLOW_MODULE_SNIPPET"] = "1"
	specPath := writeSpec(t, map[string]any{"edition": "edge", "arch": "x86_64", "hostname": "kiosk",
		"moduleSnippet": `{ ... }: { services.kiosk.url = "https://example.org"; }`})
	sum, err := customBuild(t, r.deps(), specPath)
	if err != nil {
		t.Fatalf("build:custom with snippet: %v\n%s", err, r.log.String())
	}
	got, _ := os.ReadFile(filepath.Join(sum.Outputs["system"], "config", "snippet.json"))
	if !strings.Contains(string(got), "example.org") {
		t.Errorf("snippet not evaluated into the system: %q", got)
	}
}

func TestParseShowConfig(t *testing.T) {
	for name, c := range map[string]struct {
		in      string
		want    image.NixSandbox
		wantErr bool
		safe    bool
	}{
		"2.8 entries": {in: `{"sandbox":{"value":true,"defaultValue":true},"sandbox-fallback":{"value":false},"build-users-group":{"value":"nixbld"}}`,
			want: image.NixSandbox{Mode: "true", BuildUsersGroup: "nixbld"}, safe: true},
		"relaxed":     {in: `{"sandbox":{"value":"relaxed"},"sandbox-fallback":{"value":false}}`, want: image.NixSandbox{Mode: "relaxed"}},
		"fallback":    {in: `{"sandbox":{"value":true},"sandbox-fallback":{"value":true}}`, want: image.NixSandbox{Mode: "true", Fallback: true}},
		"bare values": {in: `{"sandbox":"true","sandbox-fallback":"false","build-users-group":""}`, want: image.NixSandbox{Mode: "true"}, safe: true},
		"off":         {in: `{"sandbox":{"value":false},"sandbox-fallback":{"value":false}}`, want: image.NixSandbox{Mode: "false"}},
		"no sandbox":  {in: `{"sandbox-fallback":{"value":false}}`, wantErr: true},
		"not json":    {in: `sandbox = true`, wantErr: true},
		"odd value":   {in: `{"sandbox":{"value":{"x":1}},"sandbox-fallback":{"value":false}}`, wantErr: true},
		"hook": {in: `{"sandbox":{"value":true},"sandbox-fallback":{"value":false},"post-build-hook":{"value":"/etc/nix/upload.sh"}}`,
			want: image.NixSandbox{Mode: "true", PostBuildHook: "/etc/nix/upload.sh"}},
		"signing key": {in: `{"sandbox":{"value":true},"sandbox-fallback":{"value":false},"secret-key-files":{"value":["/etc/nix/sk"]}}`,
			want: image.NixSandbox{Mode: "true", SecretKeyFiles: "/etc/nix/sk"}},
	} {
		got, err := image.ParseShowConfig([]byte(c.in))
		if (err != nil) != c.wantErr {
			t.Errorf("%s: err = %v", name, err)
			continue
		}
		if c.wantErr {
			continue
		}
		if got != c.want {
			t.Errorf("%s: got %+v, want %+v", name, got, c.want)
		}
		if (got.Check() == nil) != c.safe {
			t.Errorf("%s: Check() = %v", name, got.Check())
		}
	}
}
