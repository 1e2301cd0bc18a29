package testrig_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cloud.google.com/go/storage"

	"github.com/socioprophet/sourceos/internal/testrig"
)

func TestFixtureFlakeBuildsWithRealNix(t *testing.T) {
	paths := testrig.Build(t,
		testrig.Attr(t, "sourceos-desktop-iso"),
		testrig.Attr(t, "sourceos-desktop-system"),
		testrig.Attr(t, "sourceos-desktop-netboot"))
	iso := filepath.Join(paths[0], "iso", "sourceos-desktop-x86_64.iso")
	if st, err := os.Stat(iso); err != nil || st.Size() == 0 {
		t.Fatalf("ISO missing or empty at %s: %v", iso, err)
	}
	closure := testrig.Closure(t, paths[1])
	if len(closure) < 5 {
		t.Fatalf("system closure has %d paths, want the chain of at least 5: %v", len(closure), closure)
	}
	for _, f := range []string{"bzImage", "initrd", "netboot.ipxe"} {
		if _, err := os.Stat(filepath.Join(paths[2], f)); err != nil {
			t.Errorf("netboot output lacks %s: %v", f, err)
		}
	}
}

func TestGCSEmulatorServesObjectsOverHTTP(t *testing.T) {
	g := testrig.StartGCS(t, "cache")
	w := g.Client(t).Bucket("cache").Object("nix-cache/nix-cache-info").If(storage.Conditions{DoesNotExist: true}).NewWriter(context.Background())
	if _, err := io.WriteString(w, "StoreDir: /nix/store\n"); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("write through emulator: %v", err)
	}
	code, body := g.Get(t, "cache", "nix-cache/nix-cache-info")
	if code != http.StatusOK || !strings.Contains(string(body), "StoreDir") {
		t.Fatalf("GET = %d %q", code, body)
	}
	if code, _ := g.Get(t, "cache", "nix-cache/missing.narinfo"); code != http.StatusNotFound {
		t.Fatalf("missing object: status %d, want 404", code)
	}
}
