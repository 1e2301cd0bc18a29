package attest_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socioprophet/sourceos/internal/attest"
	"github.com/socioprophet/sourceos/internal/attest/attesttest"
	"github.com/socioprophet/sourceos/internal/sidecar"
)

// Signing refuses a FIFO too, instead of waiting for a writer.
func TestSignRefusesFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), attesttest.ISOName)
	attesttest.Mkfifo(t, p)
	done := make(chan error, 1)
	go func() {
		_, err := attest.Write(context.Background(), attest.Options{Kind: sidecar.ISO,
			Artifacts: []sidecar.Artifact{{Path: p}}, Build: attesttest.BuildInfo("iso"), Now: attesttest.Clock})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("sign a FIFO: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sign blocked on a FIFO")
	}
}
