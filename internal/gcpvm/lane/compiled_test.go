package lane_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/gcpvm"
	"github.com/socioprophet/sourceos/internal/gcpvm/gcpvmtest"
	"github.com/socioprophet/sourceos/internal/testrig"
)

// The compiled targets, as a build VM runs them: a signing key in the VM's
// own environment (not only in its metadata) stops `mage gcp:build` before
// anything builds, and the status says why.
func TestCompiledVMRefusesKeyInItsEnvironment(t *testing.T) {
	bin := testrig.CompileMage(t)
	gcs := testrig.StartGCS(t, bucket)
	attrs := baseAttrs(t)
	attrs["sourceos-keep-vm"] = "1" // nothing to delete: the Compute API is not faked here
	gcpvmtest.Start(t, attrs)
	keys := newKeys(t)
	keyFile := filepath.Join(t.TempDir(), "sign.key")
	if err := os.WriteFile(keyFile, []byte(keys.secret), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, env := range map[string]string{
		"key":      "SOURCEOS_SIGN_SECRET_KEY=" + keys.secret,
		"key file": "SOURCEOS_SIGN_SECRET_KEY_FILE=" + keyFile,
	} {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(bin, "gcp:build")
			cmd.Dir = t.TempDir()
			cmd.Env = append(os.Environ(), env)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("gcp:build with a key in its environment succeeded:\n%s", out)
			}
			if strings.Contains(string(out), "nix build") {
				t.Errorf("it built:\n%s", out)
			}
			st := status(t, gcs)
			if st.State != gcpvm.Failed || !strings.Contains(st.Error, "SOURCEOS_SIGN_SECRET_KEY") {
				t.Errorf("status = %+v", st)
			}
			if strings.Contains(string(out)+st.Error, keys.line()) {
				t.Error("the key's value reached the output or the status")
			}
		})
	}
}
