package image

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/socioprophet/sourceos/internal/sidecar"
)

// KernelArgs returns the arguments of the first `kernel` line of an iPXE
// script (everything after the kernel file name).
func KernelArgs(ipxe string) (string, error) {
	k, err := ParseKernelLine(ipxe)
	return k.Args, err
}

// KernelLine is what an iPXE script boots: its first `kernel` line and
// the initrd it loads.
type KernelLine struct {
	// File is the kernel image the script boots, relative to the script:
	// nixpkgs names it after the platform's kernel target (bzImage on
	// x86_64, Image on aarch64).
	File string
	// Args is the kernel command line.
	Args string
	// Initrd is the file of the script's `initrd` line ("" if none).
	Initrd string
}

// ParseKernelLine reads the first `kernel` and `initrd` lines of an iPXE
// script. Their files must be plain names beside the script (no
// directory, not "." or ".."), since the netboot output holds them under
// those names.
func ParseKernelLine(ipxe string) (KernelLine, error) {
	var k KernelLine
	found := false
	sc := bufio.NewScanner(strings.NewReader(ipxe))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || (f[0] != "kernel" && f[0] != "initrd") {
			continue
		}
		if f[1] == "." || f[1] == ".." || strings.ContainsAny(f[1], `/\`) {
			return KernelLine{}, fmt.Errorf("iPXE %s %q is not a file name beside the script", f[0], f[1])
		}
		switch {
		case f[0] == "kernel" && !found:
			k.File, k.Args, found = f[1], strings.Join(f[2:], " "), true
		case f[0] == "initrd" && k.Initrd == "":
			k.Initrd = f[1]
		}
	}
	if !found {
		return KernelLine{}, fmt.Errorf("no kernel line in the iPXE script")
	}
	return k, nil
}

// ShippedArgs is the kernel command line for the set as shipped: the
// initrd is renamed to initrd, so an `initrd=<old>` argument (which
// nixpkgs' script passes, and which a kernel's EFI stub follows to load
// the initrd when iPXE cannot hand it over itself) names the new file.
func ShippedArgs(k KernelLine, initrd string) string {
	f := strings.Fields(k.Args)
	for i, a := range f {
		if k.Initrd != "" && a == "initrd="+k.Initrd {
			f[i] = "initrd=" + initrd
		}
	}
	return strings.Join(f, " ")
}

// ManifestArgs is the command line a PXE server other than iPXE passes:
// the shipped arguments without iPXE's ${cmdline} placeholder (nixpkgs'
// script appends it so a chainloading script can add parameters).
func ManifestArgs(shipped string) string {
	f := strings.Fields(shipped)
	out := f[:0]
	for _, a := range f {
		if a != "${cmdline}" {
			out = append(out, a)
		}
	}
	return strings.Join(out, " ")
}

// IPXEScript boots the kernel and initrd named in the manifest.
func IPXEScript(kernel, initrd, args string) string {
	return fmt.Sprintf("#!ipxe\nkernel %s %s\ninitrd %s\nboot\n", kernel, args, initrd)
}

// copyNetboot writes kernel, initrd, an iPXE script for their release names,
// and netboot-manifest.json to OUT.
type copyNetboot struct{}

func (copyNetboot) String() string { return "copy netboot set to OUT" }

func (copyNetboot) Run(ctx context.Context, s *State) error {
	src := s.Outputs[outImage]
	script, err := os.ReadFile(filepath.Join(src, "netboot.ipxe"))
	if err != nil {
		return fmt.Errorf("netboot output: %w", err)
	}
	line, err := ParseKernelLine(string(script))
	if err != nil {
		return fmt.Errorf("netboot output %s: %w", src, err)
	}
	if line.Initrd == "" {
		line.Initrd = "initrd"
	}
	base := s.Req.Instance.File()
	// The kernel is the file the script boots: bzImage or Image by platform.
	kernel, err := copyOut(filepath.Join(src, line.File), s.Out, base+"-kernel", KindKernel)
	if err != nil {
		return err
	}
	s.Artifacts = append(s.Artifacts, kernel)
	initrd, err := copyOut(filepath.Join(src, line.Initrd), s.Out, base+"-initrd", KindInitrd)
	if err != nil {
		return err
	}
	s.Artifacts = append(s.Artifacts, initrd)
	args := ShippedArgs(line, initrd.Name)
	ipxe, err := writeOut(s.Out, base+".ipxe", KindIPXE, []byte(IPXEScript(kernel.Name, initrd.Name, args)))
	if err != nil {
		return err
	}
	s.Artifacts = append(s.Artifacts, ipxe)
	m := sidecar.NetbootManifest{Edition: s.Req.Edition(), Arch: s.Req.Arch(), Version: s.Cfg.Version,
		Kernel: fileOf(kernel), Initrd: fileOf(initrd), IPXE: fileOf(ipxe), KernelArgs: ManifestArgs(args)}
	m.Files = []sidecar.NetbootFile{m.Kernel, m.Initrd, m.IPXE}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	manifest, err := writeOut(s.Out, "netboot-manifest.json", KindManifest, append(data, '\n'))
	if err != nil {
		return err
	}
	s.Artifacts = append(s.Artifacts, manifest)
	fmt.Fprintf(s.Stream, "    kernel args: %s\n", args)
	return nil
}

func fileOf(a *Artifact) sidecar.NetbootFile {
	return sidecar.NetbootFile{File: a.Name, SHA256: a.SHA256, Size: a.Size}
}
