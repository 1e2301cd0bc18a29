# A preinstalled disk image of an edition for QEMU/KVM, booted by UEFI.
#
# nixos-25.05's virtualisation/disk-image.nix (the module behind the
# image framework's qemu-efi variant, system.build.images.qemu-efi) with
# its defaults image.format = "qcow2" and image.efiSupport = true: a GPT
# disk with an ESP labelled ESP on /boot and an ext4 root labelled nixos
# that grows to fill the disk on first boot, systemd-boot installed at the
# removable-media path (no EFI variables are written while building). The
# labels and the boot loader are those of the fleet's hosts
# (modules/hardware/vm.nix). make-disk-image.nix writes the image to
# $out/${image.baseName}.qcow2 (and $out/nix-support/hydra-build-products),
# so the file is $out/sourceos-<edition>-<arch>.qcow2, alone at the top.
#
# The image is booted as it is built (tests/: image-<edition>-qcow2-boot),
# so it also logs to the serial console: the kernel's last console= is
# where systemd reports its progress.
{ nixpkgs, lib }:
{ system, edition, modules, ... }:
let
  arch = lib.removeSuffix "-linux" system;
  # The serial port of QEMU's machine: a 16550 UART on x86_64 (pc, q35),
  # a PL011 on aarch64 (virt).
  serial = if arch == "aarch64" then "ttyAMA0" else "ttyS0";
  qcow2Module = {
    imports = [
      "${nixpkgs}/nixos/modules/virtualisation/disk-image.nix"
      # virtio disk, network and console drivers in the initrd.
      "${nixpkgs}/nixos/modules/profiles/qemu-guest.nix"
    ];
    image.format = "qcow2";
    image.efiSupport = true;
    image.baseName = "sourceos-${edition}-${arch}";
    boot.kernelParams = [ "console=tty0" "console=${serial},115200" ];
    system.stateVersion = lib.mkDefault "25.05";
  };
  nixos = lib.nixosSystem { inherit system; modules = [ qcow2Module ] ++ modules; };
in
{
  image = nixos.config.system.build.image;
  toplevel = nixos.config.system.build.toplevel;
}
