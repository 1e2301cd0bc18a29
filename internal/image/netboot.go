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

// KernelLine is the first `kernel` line of an iPXE script.
type KernelLine struct {
	// File is the kernel image the script boots, relative to the script:
	// nixpkgs names it after the platform's kernel target (bzImage on
	// x86_64, Image on aarch64).
	File string
	// Args is the kernel command line.
	Args string
}

// ParseKernelLine reads the first `kernel` line of an iPXE script. The
// file must be a plain name beside the script (no directory, not "." or
// ".."), since the netboot output holds the kernel under that name.
func ParseKernelLine(ipxe string) (KernelLine, error) {
	sc := bufio.NewScanner(strings.NewReader(ipxe))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "kernel" {
			continue
		}
		if f[1] == "." || f[1] == ".." || strings.ContainsAny(f[1], `/\`) {
			return KernelLine{}, fmt.Errorf("iPXE kernel %q is not a file name beside the script", f[1])
		}
		return KernelLine{File: f[1], Args: strings.Join(f[2:], " ")}, nil
	}
	return KernelLine{}, fmt.Errorf("no kernel line in the iPXE script")
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
	src := s.Outputs["netboot"]
	script, err := os.ReadFile(filepath.Join(src, "netboot.ipxe"))
	if err != nil {
		return fmt.Errorf("netboot output: %w", err)
	}
	line, err := ParseKernelLine(string(script))
	if err != nil {
		return fmt.Errorf("netboot output %s: %w", src, err)
	}
	args := line.Args
	base := fmt.Sprintf("sourceos-%s-%s", s.Req.Edition, s.Req.Arch)
	// The kernel is the file the script boots: bzImage or Image by platform.
	kernel, err := copyOut(filepath.Join(src, line.File), s.Out, base+"-kernel", KindKernel)
	if err != nil {
		return err
	}
	s.Artifacts = append(s.Artifacts, kernel)
	initrd, err := copyOut(filepath.Join(src, "initrd"), s.Out, base+"-initrd", KindInitrd)
	if err != nil {
		return err
	}
	s.Artifacts = append(s.Artifacts, initrd)
	ipxe, err := writeOut(s.Out, base+".ipxe", KindIPXE, []byte(IPXEScript(kernel.Name, initrd.Name, args)))
	if err != nil {
		return err
	}
	s.Artifacts = append(s.Artifacts, ipxe)
	m := sidecar.NetbootManifest{Edition: s.Req.Edition, Arch: s.Req.Arch, Version: s.Cfg.Version,
		Kernel: fileOf(kernel), Initrd: fileOf(initrd), IPXE: fileOf(ipxe), KernelArgs: args}
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
