package image

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socioprophet/sourceos/internal/catalog"
	"github.com/socioprophet/sourceos/internal/config"
	"github.com/socioprophet/sourceos/internal/sidecar"
	"github.com/socioprophet/sourceos/internal/testrig"
)

func TestParseKernelLine(t *testing.T) {
	cases := []struct {
		name, script, file, args, err string
	}{
		{"x86_64", "#!ipxe\nkernel bzImage init=/nix/store/x/init loglevel=4 ${cmdline}\ninitrd initrd\nboot\n",
			"bzImage", "init=/nix/store/x/init loglevel=4 ${cmdline}", ""},
		{"aarch64", "#!ipxe\n# a comment\nkernel Image init=/nix/store/y/init\ninitrd initrd\nboot\n", "Image", "init=/nix/store/y/init", ""},
		{"no arguments", "#!ipxe\nkernel vmlinuz\nboot\n", "vmlinuz", "", ""},
		{"first kernel line wins", "kernel a x=1\nkernel b y=2\n", "a", "x=1", ""},
		{"no kernel line", "#!ipxe\nboot\n", "", "", "no kernel line"},
		{"kernel without file", "#!ipxe\nkernel\nboot\n", "", "", "no kernel line"},
		{"path outside the set", "kernel ../bzImage init=/x\n", "", "", "not a file name"},
		{"absolute path", "kernel /boot/bzImage init=/x\n", "", "", "not a file name"},
		{"dot-dot", "kernel .. init=/x\n", "", "", "not a file name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseKernelLine(c.script)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.File != c.file || got.Args != c.args {
				t.Fatalf("got %+v, want file %q args %q", got, c.file, c.args)
			}
		})
	}
}

// An aarch64 netboot output holds Image, not bzImage: the step copies the
// file the iPXE script boots, whatever the platform calls it.
func TestCopyNetbootUsesTheScriptsKernel(t *testing.T) {
	for _, c := range []struct{ arch, kernel string }{{"aarch64", "Image"}, {"x86_64", "bzImage"}} {
		t.Run(c.arch, func(t *testing.T) {
			src, out := t.TempDir(), t.TempDir()
			files := map[string]string{
				c.kernel:       "kernel bytes of " + c.arch,
				"initrd":       "initrd bytes",
				"netboot.ipxe": "#!ipxe\nkernel " + c.kernel + " init=/nix/store/z/init console=ttyAMA0\ninitrd initrd\nboot\n",
			}
			for name, body := range files {
				if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var stream bytes.Buffer
			s := &State{Deps: Deps{Cfg: &config.Config{Version: "1.0.0"}, Stream: &stream},
				Req: Request{Instance: netbootOf(t, c.arch)}, Out: out,
				Outputs: map[string]string{outImage: src}}
			if err := (copyNetboot{}).Run(context.Background(), s); err != nil {
				t.Fatal(err)
			}
			kernel, err := os.ReadFile(filepath.Join(out, "sourceos-edge-"+c.arch+"-kernel"))
			if err != nil || string(kernel) != files[c.kernel] {
				t.Fatalf("kernel copy %q (%v), want the %s bytes", kernel, err, c.kernel)
			}
			script, err := os.ReadFile(filepath.Join(out, "sourceos-edge-"+c.arch+".ipxe"))
			if err != nil || !strings.Contains(string(script), "kernel sourceos-edge-"+c.arch+"-kernel init=/nix/store/z/init console=ttyAMA0") {
				t.Fatalf("rewritten script %q (%v)", script, err)
			}
			var m sidecar.NetbootManifest
			raw, err := os.ReadFile(filepath.Join(out, "netboot-manifest.json"))
			if err != nil || json.Unmarshal(raw, &m) != nil {
				t.Fatalf("manifest %s: %v", raw, err)
			}
			if m.Arch != c.arch || m.Kernel.Size != int64(len(files[c.kernel])) {
				t.Fatalf("manifest %+v", m)
			}
		})
	}
}

func TestCopyNetbootWithoutTheKernelFileFails(t *testing.T) {
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "netboot.ipxe"), []byte("#!ipxe\nkernel Image init=/x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "bzImage"), []byte("x86 kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &State{Deps: Deps{Cfg: &config.Config{}, Stream: &bytes.Buffer{}}, Req: Request{Instance: netbootOf(t, "aarch64")},
		Out: t.TempDir(), Outputs: map[string]string{outImage: src}}
	err := (copyNetboot{}).Run(context.Background(), s)
	if err == nil || !strings.Contains(err.Error(), "Image") {
		t.Fatalf("err %v, want it to name the missing Image", err)
	}
}

// netbootOf is the edge edition's netboot set for arch in the repository's
// catalog.
func netbootOf(t *testing.T, arch string) catalog.Instance {
	t.Helper()
	in, err := testrig.RepoCatalog(t).ForEdition("edge", catalog.Netboot, arch)
	if err != nil {
		t.Fatal(err)
	}
	return in
}
