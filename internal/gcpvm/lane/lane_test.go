package lane_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/app"
	"github.com/socioprophet/sourceos/internal/build"
	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/gcpvm"
	"github.com/socioprophet/sourceos/internal/gcpvm/gcpvmtest"
	"github.com/socioprophet/sourceos/internal/gcpvm/lane"
	"github.com/socioprophet/sourceos/internal/sign"
	"github.com/socioprophet/sourceos/internal/testrig"
)

const (
	bucket = "sourceos-builds"
	prefix = "custom/user-7/build-42"
	spec   = `{"edition":"server","arch":"x86_64","hostname":"box-1"}`
)

func status(t *testing.T, gcs *testrig.GCS) gcpvm.Status {
	t.Helper()
	code, body := gcs.Get(t, bucket, prefix+"/status.json")
	if code != http.StatusOK {
		t.Fatalf("status.json: HTTP %d", code)
	}
	var st gcpvm.Status
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// runVM runs `mage gcp:build`'s code on a fake VM with the given metadata;
// the build is the real wiring (lane.CustomBuild) with real Nix.
func runVM(t *testing.T, attrs map[string]string) (*gcpvmtest.VM, string, error) {
	t.Helper()
	vm := gcpvmtest.Start(t, attrs)
	var log bytes.Buffer
	env := map[string]string{"OUT": t.TempDir()}
	deps := func(cfg *config.Config) build.Deps {
		a := app.With(cfg, &log, &log)
		return build.Deps{Cfg: a.Cfg, Run: a.Run, Log: a.Log, Stream: a.Stderr}
	}
	err := gcpvm.Run(context.Background(), gcpvm.Options{
		Build:      lane.CustomBuild(deps, func(s *build.Summary) error { return s.Print(&log) }),
		Env:        func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		ComputeURL: vm.ComputeURL,
		Stderr:     &log,
		TempDir:    t.TempDir(),
	})
	return vm, log.String(), err
}

func baseAttrs(t *testing.T) map[string]string {
	return map[string]string{
		"sourceos-spec":       spec,
		"sourceos-build-uid":  "user-7",
		"sourceos-build-id":   "build-42",
		"sourceos-gcs-prefix": "gs://" + bucket + "/" + prefix,
		"sourceos-version":    "1.4.0",
		"sourceos-flake":      testrig.FixtureFlake(t),
	}
}

func checkDeleted(t *testing.T, vm *gcpvmtest.VM) {
	t.Helper()
	if got := vm.DeleteCalls(); len(got) != 1 || got[0] != gcpvmtest.WantDelete {
		t.Errorf("delete calls = %q, want [%q]", got, gcpvmtest.WantDelete)
	}
}

// The whole VM lane with real Nix, offline: metadata from the fake server,
// the fixture flake, build:custom's code, the image and status.json in the
// fake GCS bucket, the self-delete call.
func TestVMLaneEndToEndWithRealNix(t *testing.T) {
	testrig.Nix(t)
	gcs := testrig.StartGCS(t, bucket)
	vm, log, err := runVM(t, baseAttrs(t))
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, log)
	}
	st := status(t, gcs)
	if st.State != gcpvm.Complete || st.ArtifactURL != "gs://"+bucket+"/"+prefix+"/sourceos-server-x86_64.iso" {
		t.Fatalf("status = %+v\n%s", st, log)
	}
	if code, body := gcs.Get(t, bucket, prefix+"/sourceos-server-x86_64.iso"); code != http.StatusOK || len(body) == 0 {
		t.Errorf("image: HTTP %d, %d bytes", code, len(body))
	}
	checkDeleted(t, vm)
}

func TestVMLaneRefusedSpec(t *testing.T) {
	testrig.Nix(t)
	gcs := testrig.StartGCS(t, bucket)
	attrs := baseAttrs(t)
	attrs["sourceos-spec"] = `{"edition":"server","arch":"x86_64","hostname":"box-1","services":["telnet"]}`
	vm, log, err := runVM(t, attrs)
	if err == nil {
		t.Fatalf("a refused spec built:\n%s", log)
	}
	if st := status(t, gcs); st.State != gcpvm.Failed || !strings.Contains(st.Error, "telnet") {
		t.Errorf("status = %+v", st)
	}
	checkDeleted(t, vm)
}

// With a public key configured, complete means the image verified; an
// image signed with another key than the configured public key is an error.
func TestVMLaneVerifyGate(t *testing.T) {
	testrig.Nix(t)
	gcs := testrig.StartGCS(t, bucket)
	kp, err := sign.Generate(sign.GenerateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other, err := sign.Generate(sign.GenerateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	attrs := baseAttrs(t)
	attrs["sourceos-sign-secret-key"] = string(kp.SecretKey)
	attrs["sourceos-sign-pubkey"] = string(kp.PublicKey)
	vm, log, err := runVM(t, attrs)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, log)
	}
	if st := status(t, gcs); st.State != gcpvm.Complete {
		t.Errorf("signed and verified: status = %+v\n%s", st, log)
	}
	checkDeleted(t, vm)
	for _, line := range strings.Split(strings.TrimSpace(string(kp.SecretKey)), "\n") {
		if !strings.HasPrefix(line, "untrusted comment:") && strings.Contains(log, line) {
			t.Error("the secret key is in the log")
		}
	}

	attrs["sourceos-sign-pubkey"] = string(other.PublicKey)
	vm, log, err = runVM(t, attrs)
	if err == nil || !strings.Contains(err.Error(), "verify gate") {
		t.Fatalf("Run error = %v, want the verify gate's\n%s", err, log)
	}
	if st := status(t, gcs); st.State != gcpvm.Failed || !strings.Contains(st.Error, "verify gate") {
		t.Errorf("wrong key: status = %+v", st)
	}
	checkDeleted(t, vm)
}
