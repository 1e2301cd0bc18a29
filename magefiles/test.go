//go:build mage

package main

import (
	"context"
	"os"

	"github.com/magefile/mage/mg"

	"github.com/socioprophet/sourceos/internal/boottest"
	"github.com/socioprophet/sourceos/internal/catalog"
	"github.com/socioprophet/sourceos/internal/devtasks"
	"github.com/socioprophet/sourceos/internal/execx"
)

// Test runs the test suite and the NixOS tests of the editions.
type Test mg.Namespace

// Aliases: `mage test` (and `go run magefile.go test`) is the whole suite.
var Aliases = map[string]interface{}{"test": Test.All}

// All runs go vet and the whole test suite, including the integration tests with real Nix, minisign and a GCS emulator.
func (Test) All(ctx context.Context) error {
	a, err := setup()
	if err != nil {
		return err
	}
	return devtasks.Test(ctx, a.Run, mg.GoCmd(), os.Stdout)
}

// Boot boots an edition of the catalog in QEMU with its NixOS test, checks.<ARCH>-linux.edition-<edition>-boot of SOURCEOS_FLAKE.
func (Test) Boot(ctx context.Context, edition string) error {
	return nixosTest(ctx, edition, boottest.Boot)
}

// Install installs an edition onto an empty disk in QEMU (opt-in, heavy): legacyPackages.<ARCH>-linux.tests.edition-<edition>-install.
func (Test) Install(ctx context.Context, edition string) error {
	return nixosTest(ctx, edition, boottest.Install)
}

// Disk boots an edition's qcow2 package itself in QEMU by UEFI to the edition's target (opt-in, heavy): legacyPackages.<ARCH>-linux.tests.image-<edition>-qcow2-boot.
func (Test) Disk(ctx context.Context, edition string) error {
	return nixosTest(ctx, edition, boottest.DiskBoot)
}

// Tools installs what the test suite needs (scripts/ensure-tools.sh: nix-bin, minisign, shellcheck, busybox-static, time, openssl).
func (Test) Tools(ctx context.Context) error {
	a, root, err := setupInRepo()
	if err != nil {
		return err
	}
	return devtasks.RunAll(ctx, a.Run, a.Stderr, "install test tools", []execx.Cmd{devtasks.ToolsCommand(root)})
}

// Kvm opens /dev/kvm to Nix's build users (a udev rule), so NixOS tests run with hardware virtualisation.
func (Test) Kvm(ctx context.Context) error {
	a, err := setup()
	if err != nil {
		return err
	}
	return devtasks.RunAll(ctx, a.Run, a.Stderr, "enable kvm", devtasks.KVMCommands(os.Geteuid() == 0))
}

func nixosTest(ctx context.Context, edition string, kind boottest.Kind) error {
	a, err := setup()
	if err != nil {
		return err
	}
	req := boottest.Request{Flake: catalog.FlakeRef(a.Cfg.Flake), Arch: a.Cfg.Arch, Edition: edition, Kind: kind}
	return boottest.Run(ctx, boottest.Options{Run: a.Run, Stream: a.Stderr}, req)
}
