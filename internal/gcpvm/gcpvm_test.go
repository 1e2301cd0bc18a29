package gcpvm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/gcpvm"
	"github.com/socioprophet/sourceos/internal/gcpvm/gcpvmtest"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// Secrets the fake VM is given; none may appear in logs or status.json.
const (
	signKey   = "untrusted comment: minisign secret key\nRWRTY0IyzJ1nT4mEYmY3sOtn5Ebl1qOmmLiD8cHmB6wW8bq3xRhtb0KfXQAAAAIAAAAAAAAAQAAAAP"
	signPass  = "correct-horse-battery-staple"
	cacheKey  = "sourceos-cache-1:q0FSfA0vJ3gtjL6z1B1d3Nd4Hq3h8XvOZ6tWm1Jj7Yt4bZg2sYcQ9nD1aFqkR8eV3wXoPz5uLmN0cT7yH2iGfA=="
	spec      = `{"edition":"server","arch":"x86_64","hostname":"box-1","packages":["htop"]}`
	bucket    = "sourceos-builds"
	prefixKey = "user-builds/user-7/build-42"
)

var clock = func() time.Time { return time.Date(2026, 6, 22, 13, 31, 0, 0, time.UTC) }

const (
	accessToken = gcpvmtest.AccessToken
	wantDelete  = gcpvmtest.WantDelete
)

func fullAttrs() map[string]string {
	return map[string]string{
		"sourceos-spec":       spec,
		"sourceos-build-uid":  "user-7",
		"sourceos-build-id":   "build-42",
		"sourceos-gcs-prefix": "gs://" + bucket + "/" + prefixKey,
		"sourceos-version":    "1.4.0",
		"sourceos-cache-url":  "https://storage.googleapis.com/sourceos-nix-cache/nix-cache",
	}
}

func options(t *testing.T, vm *gcpvmtest.VM, build gcpvm.BuildFunc, env map[string]string, log *bytes.Buffer) gcpvm.Options {
	return gcpvm.Options{
		Build:      build,
		Env:        func(k string) (string, bool) { val, ok := env[k]; return val, ok },
		ReadFile:   func(string) ([]byte, error) { return nil, errors.New("no files in this test") },
		ComputeURL: vm.ComputeURL,
		Stderr:     log,
		Clock:      clock,
		TempDir:    t.TempDir(),
		RetryDelay: time.Millisecond,
	}
}

func readStatus(t *testing.T, gcs *testrig.GCS) gcpvm.Status {
	t.Helper()
	code, body := gcs.Get(t, bucket, prefixKey+"/status.json")
	if code != http.StatusOK {
		t.Fatalf("status.json: HTTP %d %s", code, body)
	}
	var st gcpvm.Status
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("status.json: %v: %s", err, body)
	}
	noSecrets(t, "status.json", string(body))
	return st
}

func noSecrets(t *testing.T, what, s string) {
	t.Helper()
	for _, secret := range []string{signKey, "RWRTY0IyzJ1nT4mEYmY3sOtn5Ebl1qOmm", signPass, cacheKey, "q0FSfA0vJ3gtjL6z1B1d3Nd4", accessToken} {
		if strings.Contains(s, secret) {
			t.Errorf("%s contains the secret %q:\n%s", what, secret, s)
		}
	}
}

func TestVMBuildComplete(t *testing.T) {
	gcs := testrig.StartGCS(t, bucket)
	vm := gcpvmtest.Start(t, fullAttrs())
	var log bytes.Buffer
	var sawBuilding bool
	build := func(ctx context.Context, cfg *config.Config, specPath string) (string, error) {
		b, err := os.ReadFile(specPath)
		if err != nil || string(b) != spec {
			t.Errorf("spec file = %q, %v", b, err)
		}
		if cfg.BuildUID != "user-7" || cfg.BuildID != "build-42" || cfg.Version != "1.4.0" || cfg.GCSPrefix != "gs://"+bucket+"/"+prefixKey {
			t.Errorf("build ids from metadata not in the config: %+v", cfg)
		}
		if len(cfg.SecretsSet()) != 0 {
			t.Errorf("a build VM's configuration holds secrets: %v", cfg.SecretsSet())
		}
		// Process environment under the metadata: kept where metadata is silent, overridden where not.
		if cfg.Edition != "edge" || cfg.CacheURL != "https://storage.googleapis.com/sourceos-nix-cache/nix-cache" {
			t.Errorf("overlay: edition %q (want edge from env), cache URL %q (want metadata's)", cfg.Edition, cfg.CacheURL)
		}
		sawBuilding = readStatus(t, gcs).State == gcpvm.Building
		if len(vm.DeleteCalls()) != 0 {
			t.Error("VM deleted before the build finished")
		}
		return "https://storage.googleapis.com/" + bucket + "/" + prefixKey + "/sourceos-server-x86_64.iso", nil
	}
	env := map[string]string{"EDITION": "edge", "NIX_CACHE_URL": "https://from-env.example/cache"}
	if err := gcpvm.Run(context.Background(), options(t, vm, build, env, &log)); err != nil {
		t.Fatalf("Run: %v\n%s", err, log.String())
	}
	if !sawBuilding {
		t.Error("status.json did not say building while the build ran")
	}
	st := readStatus(t, gcs)
	// Built but not signed: the old backend's status still says building,
	// and names no artifact yet.
	want := gcpvm.Status{State: gcpvm.Built, BuildID: "build-42", UID: "user-7", Version: "1.4.0", Lane: "gcp",
		StartedAt: clock(), UpdatedAt: clock(), ArtifactURL: "https://storage.googleapis.com/" + bucket + "/" + prefixKey + "/sourceos-server-x86_64.iso",
		OldStatus: "building"}
	if st != want {
		t.Errorf("status = %+v\nwant     %+v", st, want)
	}
	attrs, err := gcs.Client(t).Bucket(bucket).Object(prefixKey + "/status.json").Attrs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if attrs.CacheControl != "no-store" || attrs.ContentType != "application/json" {
		t.Errorf("status.json Cache-Control %q, Content-Type %q", attrs.CacheControl, attrs.ContentType)
	}
	if got := vm.DeleteCalls(); len(got) != 1 || got[0] != wantDelete {
		t.Errorf("delete calls = %q, want [%q]", got, wantDelete)
	}
	noSecrets(t, "log", log.String())
	for _, step := range []string{"reading instance metadata", "status", "build starting", "build finished", "deleting this VM", "VM delete requested"} {
		if !strings.Contains(log.String(), step) {
			t.Errorf("log lacks %q:\n%s", step, log.String())
		}
	}
}

func TestVMBuildFailureReportsReasonAndDeletes(t *testing.T) {
	gcs := testrig.StartGCS(t, bucket)
	vm := gcpvmtest.Start(t, fullAttrs())
	var log bytes.Buffer
	build := func(ctx context.Context, cfg *config.Config, specPath string) (string, error) {
		// A careless error that quotes a secret must still be masked.
		return "", errors.New("nix build: builder for sourceos-server-iso failed with exit code 1; key was " + cfg.CacheSecretKey.Reveal())
	}
	err := gcpvm.Run(context.Background(), options(t, vm, build, nil, &log))
	if err == nil || !strings.Contains(err.Error(), "exit code 1") {
		t.Fatalf("Run error = %v, want the build's", err)
	}
	noSecrets(t, "returned error", err.Error())
	st := readStatus(t, gcs)
	if st.State != gcpvm.Failed || !strings.Contains(st.Error, "failed with exit code 1") || st.ArtifactURL != "" {
		t.Errorf("status = %+v", st)
	}
	if got := vm.DeleteCalls(); len(got) != 1 || got[0] != wantDelete {
		t.Errorf("delete calls = %q, want [%q]", got, wantDelete)
	}
	noSecrets(t, "log", log.String())
}

func TestVMCannotStartStillReportsAndDeletes(t *testing.T) {
	cases := map[string]struct {
		change func(map[string]string)
		want   string
	}{
		"no spec":          {func(a map[string]string) { delete(a, "sourceos-spec") }, "sourceos-spec is not set"},
		"bad config value": {func(a map[string]string) { a["sourceos-allow-module-snippet"] = "maybe" }, "SOURCEOS_ALLOW_MODULE_SNIPPET"},
		"key in metadata":  {func(a map[string]string) { a["sourceos-cache-secret-key"] = cacheKey }, "sourceos-cache-secret-key"},
		// The shell pipeline's name of the cache key, which its backend may still set.
		"old key name": {func(a map[string]string) { a["sourceos-nix-cache-secret-key"] = cacheKey }, "sourceos-nix-cache-secret-key"},
		"two user ids": {func(a map[string]string) { a["sourceos-uid"] = "user-8" },
			`sourceos-build-uid ("user-7") and sourceos-uid ("user-8") both set BUILD_UID and differ`},
		"bad timeout":     {func(a map[string]string) { a["sourceos-timeout"] = "soon" }, "sourceos-timeout"},
		"unsafe build id": {func(a map[string]string) { a["sourceos-build-id"] = "../other-user" }, "BUILD_ID"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			gcs := testrig.StartGCS(t, bucket)
			attrs := fullAttrs()
			c.change(attrs)
			vm := gcpvmtest.Start(t, attrs)
			var log bytes.Buffer
			built := false
			build := func(context.Context, *config.Config, string) (string, error) { built = true; return "x", nil }
			err := gcpvm.Run(context.Background(), options(t, vm, build, nil, &log))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Run error = %v, want %q", err, c.want)
			}
			if built {
				t.Error("the build ran")
			}
			if st := readStatus(t, gcs); st.State != gcpvm.Failed || !strings.Contains(st.Error, c.want) {
				t.Errorf("status = %+v, want error mentioning %q", st, c.want)
			}
			if got := vm.DeleteCalls(); len(got) != 1 {
				t.Errorf("delete calls = %q, want one", got)
			}
			noSecrets(t, "log", log.String())
		})
	}
}

func TestVMTimeout(t *testing.T) {
	gcs := testrig.StartGCS(t, bucket)
	attrs := fullAttrs()
	attrs["sourceos-timeout"] = "100ms"
	vm := gcpvmtest.Start(t, attrs)
	var log bytes.Buffer
	build := func(ctx context.Context, _ *config.Config, _ string) (string, error) {
		<-ctx.Done()
		return "", ctx.Err()
	}
	err := gcpvm.Run(context.Background(), options(t, vm, build, nil, &log))
	if err == nil || !strings.Contains(err.Error(), "timed out after 100ms") {
		t.Errorf("Run error = %v", err)
	}
	if st := readStatus(t, gcs); st.State != gcpvm.Failed || !strings.Contains(st.Error, "timed out") {
		t.Errorf("status = %+v", st)
	}
	if got := vm.DeleteCalls(); len(got) != 1 {
		t.Errorf("delete calls = %q, want one (the deadline must not cancel the delete)", got)
	}
}

func TestVMKeepVM(t *testing.T) {
	testrig.StartGCS(t, bucket)
	attrs := fullAttrs()
	attrs["sourceos-keep-vm"] = "1"
	vm := gcpvmtest.Start(t, attrs)
	var log bytes.Buffer
	build := func(context.Context, *config.Config, string) (string, error) { return "gs://x/y.iso", nil }
	if err := gcpvm.Run(context.Background(), options(t, vm, build, nil, &log)); err != nil {
		t.Fatal(err)
	}
	if got := vm.DeleteCalls(); len(got) != 0 {
		t.Errorf("delete calls = %q, want none", got)
	}
	if !strings.Contains(log.String(), "not deleting the VM") {
		t.Errorf("log does not say the VM is kept:\n%s", log.String())
	}
}

func TestVMDeleteRetriesAndReports(t *testing.T) {
	testrig.StartGCS(t, bucket)
	build := func(context.Context, *config.Config, string) (string, error) { return "gs://x/y.iso", nil }

	vm := gcpvmtest.Start(t, fullAttrs())
	vm.DeleteStatus = []int{http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusOK}
	var log bytes.Buffer
	if err := gcpvm.Run(context.Background(), options(t, vm, build, nil, &log)); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := vm.DeleteCalls(); len(got) != 3 {
		t.Errorf("delete calls = %d, want 3 (two retried)", len(got))
	}

	vm = gcpvmtest.Start(t, fullAttrs())
	vm.DeleteStatus = []int{http.StatusForbidden}
	log.Reset()
	err := gcpvm.Run(context.Background(), options(t, vm, build, nil, &log))
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("Run error = %v, want the delete's 403", err)
	}
	if got := vm.DeleteCalls(); len(got) != 1 {
		t.Errorf("delete calls = %d, want 1 (a 403 is not retried)", len(got))
	}
	noSecrets(t, "log", log.String())
	noSecrets(t, "error", err.Error())
}

func TestNotOnAVM(t *testing.T) {
	vm := gcpvmtest.Start(t, fullAttrs())
	vm.Hide["instance/name"] = true
	var log bytes.Buffer
	build := func(context.Context, *config.Config, string) (string, error) { t.Error("built"); return "", nil }
	err := gcpvm.Run(context.Background(), options(t, vm, build, nil, &log))
	if err == nil || !strings.Contains(err.Error(), "instance/name is not set") {
		t.Errorf("Run error = %v", err)
	}
	if got := vm.DeleteCalls(); len(got) != 0 {
		t.Errorf("delete calls = %q: nothing is known to delete", got)
	}
}

func loadConfig(t *testing.T, env map[string]string) *config.Config {
	t.Helper()
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		func(string) ([]byte, error) { return nil, errors.New("no files") })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestCustomLane(t *testing.T) {
	gcs := testrig.StartGCS(t, bucket)
	cfg := loadConfig(t, map[string]string{"GCS_PREFIX": "gs://" + bucket + "/" + prefixKey, "BUILD_UID": "user-7",
		"BUILD_ID": "build-42", "SOURCEOS_SIGN_SECRET_KEY": signKey})
	var log bytes.Buffer
	build := func(ctx context.Context, c *config.Config, specPath string) (string, error) {
		if st := readStatus(t, gcs); st.State != gcpvm.Building || st.Lane != "github" {
			t.Errorf("status during the build = %+v", st)
		}
		return "gs://" + bucket + "/" + prefixKey + "/sourceos-server-x86_64.iso", nil
	}
	err := gcpvm.Custom(context.Background(), gcpvm.CustomOptions{Cfg: cfg, Spec: []byte(spec), Build: build,
		Lane: "github", Stderr: &log, Clock: clock, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if st := readStatus(t, gcs); st.State != gcpvm.Built || st.ArtifactURL == "" || st.Signed {
		t.Errorf("status = %+v", st)
	}
	noSecrets(t, "log", log.String())

	// A failure that quotes a secret: error status with the reason, masked.
	leak := func(ctx context.Context, c *config.Config, _ string) (string, error) {
		return "", errors.New("signing failed with key " + c.SignSecretKey.Reveal())
	}
	err = gcpvm.Custom(context.Background(), gcpvm.CustomOptions{Cfg: cfg, Spec: []byte(spec), Build: leak,
		Lane: "github", Stderr: &log, Clock: clock, TempDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "signing failed") {
		t.Errorf("Custom error = %v", err)
	} else {
		noSecrets(t, "returned error", err.Error())
	}
	if st := readStatus(t, gcs); st.State != gcpvm.Failed || !strings.Contains(st.Error, "signing failed with key [REDACTED]") {
		t.Errorf("status = %+v", st)
	}
	noSecrets(t, "log", log.String())

	// Without a prefix the build runs and nothing is written.
	built := false
	err = gcpvm.Custom(context.Background(), gcpvm.CustomOptions{Cfg: loadConfig(t, nil), Spec: []byte(spec), Lane: "local",
		Build:  func(context.Context, *config.Config, string) (string, error) { built = true; return "out/x.iso", nil },
		Stderr: &log, TempDir: t.TempDir()})
	if err != nil || !built {
		t.Errorf("no prefix: err %v, built %v", err, built)
	}
}

func TestAbandon(t *testing.T) {
	gcs := testrig.StartGCS(t, bucket)
	cfg := loadConfig(t, map[string]string{"GCS_PREFIX": "gs://" + bucket + "/" + prefixKey, "BUILD_ID": "build-42"})
	abandon := func() {
		t.Helper()
		var log bytes.Buffer
		if err := gcpvm.Abandon(context.Background(), gcpvm.AbandonOptions{Cfg: cfg, Reason: "runner stopped", Lane: "github", Stderr: &log, Clock: clock}); err != nil {
			t.Fatal(err)
		}
	}
	// No status yet (setup failed before the build started).
	abandon()
	if st := readStatus(t, gcs); st.State != gcpvm.Failed || st.Error != "runner stopped" {
		t.Errorf("no status: then %+v", st)
	}
	// A final status is kept.
	done := func(context.Context, *config.Config, string) (string, error) { return "gs://b/x.iso", nil }
	if err := gcpvm.Custom(context.Background(), gcpvm.CustomOptions{Cfg: cfg, Spec: []byte(spec), Build: done, Lane: "github", Stderr: &bytes.Buffer{}, TempDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	abandon()
	if st := readStatus(t, gcs); st.State != gcpvm.Built {
		t.Errorf("built was overwritten: %+v", st)
	}
	// A build left "building" (the job was cancelled mid-build) becomes error.
	stuck := func(ctx context.Context, _ *config.Config, _ string) (string, error) {
		if st := readStatus(t, gcs); st.State != gcpvm.Building {
			t.Fatalf("status during the build = %+v", st)
		}
		abandon()
		if st := readStatus(t, gcs); st.State != gcpvm.Failed || st.Error != "runner stopped" {
			t.Errorf("building, then abandoned: %+v", st)
		}
		return "", errors.New("cancelled")
	}
	_ = gcpvm.Custom(context.Background(), gcpvm.CustomOptions{Cfg: cfg, Spec: []byte(spec), Build: stuck, Lane: "github", Stderr: &bytes.Buffer{}, TempDir: t.TempDir()})
}

func TestSpecArg(t *testing.T) {
	quoted, _ := json.Marshal(spec)
	for arg, want := range map[string]string{spec: spec, " " + spec + "\n": spec, string(quoted): spec} {
		got, err := gcpvm.SpecArg(arg)
		if err != nil || string(got) != want {
			t.Errorf("SpecArg(%q) = %q, %v", arg, got, err)
		}
	}
	// A path is never opened: a dispatcher could otherwise have a file of
	// the runner read and its fields quoted back into status.json.
	secretFile := filepath.Join(t.TempDir(), "runner-secret.json")
	if err := os.WriteFile(secretFile, []byte(`{"edition":"desktop","hostname":"RUNNER-SECRET"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, arg := range []string{"", `"not an object"`, secretFile, "/etc/passwd", "@" + secretFile} {
		got, err := gcpvm.SpecArg(arg)
		if err == nil || strings.Contains(string(got)+err.Error(), "RUNNER-SECRET") {
			t.Errorf("SpecArg(%q) = %q, %v: want a refusal that quotes nothing of the file", arg, got, err)
		}
	}
}

func TestAttributesMapToConfig(t *testing.T) {
	seen := map[string]bool{}
	for _, a := range gcpvm.Attributes {
		if !strings.HasPrefix(a.Name, "sourceos-") || seen[a.Name] {
			t.Errorf("attribute %q: want a unique sourceos- name", a.Name)
		}
		seen[a.Name] = true
		if a.Var != "" {
			if _, ok := config.Lookup(a.Var); !ok {
				t.Errorf("attribute %s sets %s, which config does not declare", a.Name, a.Var)
			}
		}
		// No key reaches a build VM through its metadata.
		if a.Secret() || slices.Contains(gcpvm.RefusedAttributes, a.Name) {
			t.Errorf("attribute %s carries a secret", a.Name)
		}
	}
}

func TestEnvOverlay(t *testing.T) {
	in := &gcpvm.Instance{Attrs: map[string]string{"sourceos-version": "2.0.0", "sourceos-spec": spec}}
	base := map[string]string{"VERSION": "1.0.0", "EDITION": "edge"}
	env := in.Env(func(k string) (string, bool) { v, ok := base[k]; return v, ok })
	for k, want := range map[string]string{"VERSION": "2.0.0", "EDITION": "edge"} {
		if got, ok := env(k); !ok || got != want {
			t.Errorf("%s = %q, %v; want %q", k, got, ok, want)
		}
	}
}

// A key given to the VM through its environment (a _FILE variable in the
// startup environment) stops the build as a key in metadata does.
func TestVMRefusesKeysInItsEnvironment(t *testing.T) {
	gcs := testrig.StartGCS(t, bucket)
	vm := gcpvmtest.Start(t, fullAttrs())
	var log bytes.Buffer
	built := false
	build := func(context.Context, *config.Config, string) (string, error) { built = true; return "x", nil }
	opts := options(t, vm, build, map[string]string{"NIX_CACHE_SECRET_KEY_FILE": "/run/cache.key"}, &log)
	opts.ReadFile = func(string) ([]byte, error) { return []byte(cacheKey), nil }
	err := gcpvm.Run(context.Background(), opts)
	if err == nil || built || !strings.Contains(err.Error(), "NIX_CACHE_SECRET_KEY") {
		t.Fatalf("Run error = %v, built = %v", err, built)
	}
	if st := readStatus(t, gcs); st.State != gcpvm.Failed {
		t.Errorf("status = %+v", st)
	}
	noSecrets(t, "log", log.String())
}

func TestVMMetadataErrorStillReportsAndDeletes(t *testing.T) {
	gcs := testrig.StartGCS(t, bucket)
	vm := gcpvmtest.Start(t, fullAttrs())
	vm.Fail["instance/attributes/sourceos-version"] = http.StatusForbidden
	var log bytes.Buffer
	build := func(context.Context, *config.Config, string) (string, error) { t.Error("built"); return "", nil }
	err := gcpvm.Run(context.Background(), options(t, vm, build, nil, &log))
	if err == nil || !strings.Contains(err.Error(), "sourceos-version") {
		t.Errorf("Run error = %v", err)
	}
	if st := readStatus(t, gcs); st.State != gcpvm.Failed || !strings.Contains(st.Error, "403") {
		t.Errorf("status = %+v", st)
	}
	if got := vm.DeleteCalls(); len(got) != 1 {
		t.Errorf("delete calls = %q, want one", got)
	}
}

func TestVMBuildPanicStillReportsAndDeletes(t *testing.T) {
	gcs := testrig.StartGCS(t, bucket)
	vm := gcpvmtest.Start(t, fullAttrs())
	var log bytes.Buffer
	build := func(context.Context, *config.Config, string) (string, error) { panic("nil map in a build step") }
	if err := gcpvm.Run(context.Background(), options(t, vm, build, nil, &log)); err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Errorf("Run error = %v", err)
	}
	if st := readStatus(t, gcs); st.State != gcpvm.Failed || !strings.Contains(st.Error, "nil map in a build step") {
		t.Errorf("status = %+v", st)
	}
	if got := vm.DeleteCalls(); len(got) != 1 {
		t.Errorf("delete calls = %q, want one", got)
	}
}

// The VM reads the shell pipeline's metadata key of the user,
// sourceos-uid, as sourceos-build-uid (the same value under both names is
// fine), and the target from sourceos-target.
func TestVMReadsOldUIDKeyAndTarget(t *testing.T) {
	for name, change := range map[string]func(map[string]string){
		"old key only": func(a map[string]string) { delete(a, "sourceos-build-uid"); a["sourceos-uid"] = "user-7" },
		"both, equal":  func(a map[string]string) { a["sourceos-uid"] = "user-7" },
	} {
		t.Run(name, func(t *testing.T) {
			testrig.StartGCS(t, bucket)
			attrs := fullAttrs()
			change(attrs)
			attrs["sourceos-target"] = "netboot"
			vm := gcpvmtest.Start(t, attrs)
			var got *config.Config
			build := func(_ context.Context, cfg *config.Config, _ string) (string, error) {
				got = cfg
				return "gs://x/y", nil
			}
			var log bytes.Buffer
			if err := gcpvm.Run(context.Background(), options(t, vm, build, nil, &log)); err != nil {
				t.Fatalf("Run: %v\n%s", err, log.String())
			}
			if got == nil || got.BuildUID != "user-7" || got.Target != "netboot" {
				t.Fatalf("config = %+v", got)
			}
		})
	}
}

// oldStatus is status.json as the self-serve backend of the shell pipeline
// reads it.
type oldStatus struct {
	Status, Lane, Artifact, Run string
}

func readOldStatus(t *testing.T, gcs *testrig.GCS) (oldStatus, map[string]any) {
	t.Helper()
	_, body := gcs.Get(t, bucket, prefixKey+"/status.json")
	var old oldStatus
	var all map[string]any
	if err := json.Unmarshal(body, &old); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(body, &all); err != nil {
		t.Fatal(err)
	}
	return old, all
}

// The GitHub lane's status carries the old fields with the old values at
// every stage: building with the run id while it builds, still building
// once built (the signer has yet to run), error when it failed; no
// artifact before the signer says complete.
func TestCustomLaneOldStatusFields(t *testing.T) {
	gcs := testrig.StartGCS(t, bucket)
	cfg := loadConfig(t, map[string]string{"GCS_PREFIX": "gs://" + bucket + "/" + prefixKey, "BUILD_UID": "user-7",
		"BUILD_ID": "build-42", "GITHUB_RUN_ID": "4242424242"})
	var during oldStatus
	build := func(context.Context, *config.Config, string) (string, error) {
		during, _ = readOldStatus(t, gcs)
		return "gs://" + bucket + "/" + prefixKey + "/x.iso", nil
	}
	if err := gcpvm.Custom(context.Background(), gcpvm.CustomOptions{Cfg: cfg, Spec: []byte(spec), Build: build,
		Lane: gcpvm.LaneCI, Stderr: &bytes.Buffer{}, Clock: clock, TempDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if want := (oldStatus{Status: "building", Lane: "ci", Run: "4242424242"}); during != want {
		t.Errorf("while building: %+v, want %+v", during, want)
	}
	after, all := readOldStatus(t, gcs)
	if want := (oldStatus{Status: "building", Lane: "ci", Run: "4242424242"}); after != want {
		t.Errorf("built, not signed: %+v, want %+v", after, want)
	}
	if _, ok := all["artifact"]; ok {
		t.Errorf("an artifact is named before the signer ran: %v", all)
	}
	fail := func(context.Context, *config.Config, string) (string, error) {
		return "", errors.New("nix build failed")
	}
	_ = gcpvm.Custom(context.Background(), gcpvm.CustomOptions{Cfg: cfg, Spec: []byte(spec), Build: fail,
		Lane: gcpvm.LaneCI, Stderr: &bytes.Buffer{}, Clock: clock, TempDir: t.TempDir()})
	if got, _ := readOldStatus(t, gcs); got.Status != "error" || got.Artifact != "" {
		t.Errorf("after a failure: %+v", got)
	}
	// A job that stopped early: abandon writes the old error too.
	if err := gcpvm.Abandon(context.Background(), gcpvm.AbandonOptions{Cfg: loadConfig(t, map[string]string{"GCS_PREFIX": "gs://" + bucket + "/other"}),
		Reason: "cancelled", Lane: gcpvm.LaneCI, Stderr: &bytes.Buffer{}, Clock: clock}); err != nil {
		t.Fatal(err)
	}
	_, body := gcs.Get(t, bucket, "other/status.json")
	var abandoned oldStatus
	if err := json.Unmarshal(body, &abandoned); err != nil || abandoned.Status != "error" {
		t.Errorf("abandoned: %s", body)
	}
}

// Every state maps to one the old backend knows.
func TestStateOld(t *testing.T) {
	for state, want := range map[gcpvm.State]gcpvm.OldState{gcpvm.Building: "building", gcpvm.Built: "building",
		gcpvm.Complete: "complete", gcpvm.Failed: "error"} {
		if got := state.Old(); got != want {
			t.Errorf("%s.Old() = %s, want %s", state, got, want)
		}
	}
}
