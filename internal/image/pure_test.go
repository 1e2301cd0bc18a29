package image

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socioprophet/sourceos/internal/catalog"
	"github.com/socioprophet/sourceos/internal/testrig"
)

func TestBuildArgsAndInstallable(t *testing.T) {
	in, err := testrig.RepoCatalog(t).ForEdition("desktop", catalog.ISO, "x86_64")
	if err != nil {
		t.Fatal(err)
	}
	inst := catalog.Installable("path:/src", in.Attr())
	if inst != "path:/src#packages.x86_64-linux.sourceos-desktop-iso" {
		t.Fatalf("installable %q", inst)
	}
	got := strings.Join(BuildArgs(inst, "--option", "allow-import-from-derivation", "false"), " ")
	want := "build --json --no-link --print-build-logs --no-update-lock-file --option allow-import-from-derivation false " + inst
	if got != want {
		t.Fatalf("argv %q, want %q", got, want)
	}
}

func TestParseBuildJSON(t *testing.T) {
	cases := []struct {
		in, want, err string
	}{
		{`[{"drvPath":"/nix/store/a.drv","outputs":{"out":"/nix/store/aaa-x"}}]`, "/nix/store/aaa-x", ""},
		{`[{"drvPath":"/nix/store/a.drv","outputs":{"out":"/nix/store/aaa-x"},"startTime":0,"stopTime":0}]`, "/nix/store/aaa-x", ""},
		{`[]`, "", "want 1 result"},
		{`[{"outputs":{"dev":"/nix/store/d"}}]`, "", "no out path"},
		{`not json`, "", "parse nix build"},
	}
	for _, c := range cases {
		got, err := ParseBuildJSON([]byte(c.in))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: got %q, %v", c.in, got, err)
		}
	}
}

func TestKernelArgs(t *testing.T) {
	args, err := KernelArgs("#!ipxe\n# comment\nkernel bzImage init=/nix/store/x-init/init loglevel=4 console=ttyS0\ninitrd initrd\nboot\n")
	if err != nil || args != "init=/nix/store/x-init/init loglevel=4 console=ttyS0" {
		t.Fatalf("got %q, %v", args, err)
	}
	if _, err := KernelArgs("#!ipxe\nboot\n"); err == nil {
		t.Fatal("script without kernel line accepted")
	}
	if s := IPXEScript("k", "i", "a=b"); s != "#!ipxe\nkernel k a=b\ninitrd i\nboot\n" {
		t.Fatalf("script %q", s)
	}
}

func TestShippedArgsNameTheShippedInitrd(t *testing.T) {
	const nixpkgs = "#!ipxe\n# Use the cmdline variable\nkernel bzImage init=/nix/store/x/init initrd=initrd loglevel=4 ${cmdline}\ninitrd initrd\nboot\n"
	k, err := ParseKernelLine(nixpkgs)
	if err != nil || k.File != "bzImage" || k.Initrd != "initrd" {
		t.Fatalf("got %+v, %v", k, err)
	}
	shipped := ShippedArgs(k, "sourceos-edge-aarch64-initrd")
	if shipped != "init=/nix/store/x/init initrd=sourceos-edge-aarch64-initrd loglevel=4 ${cmdline}" {
		t.Errorf("shipped %q", shipped)
	}
	if m := ManifestArgs(shipped); m != "init=/nix/store/x/init initrd=sourceos-edge-aarch64-initrd loglevel=4" {
		t.Errorf("manifest %q", m)
	}
	// An initrd= that names another file is the user's, not the script's.
	k2, _ := ParseKernelLine("kernel Image initrd=other.img\ninitrd boot.img\n")
	if got := ShippedArgs(k2, "x-initrd"); got != "initrd=other.img" {
		t.Errorf("got %q", got)
	}
	if _, err := ParseKernelLine("kernel Image\ninitrd ../etc/passwd\n"); err == nil {
		t.Error("an initrd outside the netboot output was accepted")
	}
}

func TestCustomTemplate(t *testing.T) {
	// A remote flake: the template compiled into the binary, which is the
	// repository's editions/custom/flake.nix.
	got, err := CustomTemplate("github:socioprophet/sourceos")
	want, rerr := os.ReadFile("../../editions/custom/flake.nix")
	if err != nil || rerr != nil || !bytes.Equal(got, want) {
		t.Fatalf("embedded template differs from editions/custom/flake.nix (%v, %v)", err, rerr)
	}
	// A local flake: its own template.
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "editions", "custom"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "editions", "custom", "flake.nix"), []byte("{ }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := CustomTemplate("path:" + dir); err != nil || string(got) != "{ }\n" {
		t.Fatalf("local template: %q, %v", got, err)
	}
	// A local flake without one (a tree adopting the pipeline): the
	// template compiled in.
	if got, err := CustomTemplate("path:" + t.TempDir()); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("local flake without a template: %v", err)
	}
}

func TestPrefixWriter(t *testing.T) {
	var b bytes.Buffer
	w := newPrefixWriter(&b, "> ")
	for _, chunk := range []string{"a\nb", "c\n", "\nd"} {
		if _, err := w.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if b.String() != "> a\n> bc\n> \n> d\n" {
		t.Fatalf("got %q", b.String())
	}
}

func TestRequestValidate(t *testing.T) {
	err := Request{}.Validate()
	for _, want := range []string{"no artifact", "SOURCEOS_FLAKE"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	in, err := testrig.RepoCatalog(t).ForEdition("edge", catalog.Netboot, "aarch64")
	if err != nil {
		t.Fatal(err)
	}
	if err := (Request{Instance: in, Flake: "."}).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestHumanBytes(t *testing.T) {
	for in, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := humanBytes(in); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestProgressReader(t *testing.T) {
	clock := time.Unix(0, 0)
	now := func() time.Time { clock = clock.Add(3 * time.Second); return clock }
	var out bytes.Buffer
	p := newProgressReader(strings.NewReader(strings.Repeat("x", 4<<20)), &out, "img.iso", 4<<20, now)
	buf := make([]byte, 1<<20)
	for {
		if _, err := p.Read(buf); err != nil {
			break
		}
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "    img.iso: ") || !strings.Contains(out.String(), "4.0 MiB / 4.0 MiB (100%)") {
		t.Fatalf("progress lines:\n%s", out.String())
	}
	if got := progressLine(512<<20, 2<<30, 4*time.Second); got != "512.0 MiB / 2.0 GiB (25%), 128.0 MiB/s" {
		t.Fatalf("progressLine = %q", got)
	}
}
