# A Google Compute Engine image of an edition: disk.raw in a tar.gz, the
# format `gcloud compute images create --source-uri` imports.
#
# nixos-25.05's virtualisation/google-compute-image.nix (the image
# framework's google-compute variant): google-compute-config.nix (GRUB on
# an MBR disk booted by BIOS, root labelled nixos, console on ttyS0, the
# Google guest agent, OS Login, the headless profile, firewall left to
# GCP), built by make-disk-image.nix as a raw disk that the module renames
# disk.raw and packs into $out/${image.fileName}, image.fileName being
# ${image.baseName}.raw.tar.gz; the raw disk is removed. So the file is
# $out/sourceos-<edition>-<arch>.raw.tar.gz, alone at the top (next to
# nix-support/).
#
# x86_64 only: the module's default boot loader is GRUB for BIOS
# (boot.loader.grub.device = "/dev/sda"), which aarch64 has not; GCE's Arm
# machines boot by UEFI only.
{ nixpkgs, lib }:
{ system, edition, modules, ... }:
let
  arch = lib.removeSuffix "-linux" system;
  gceModule = {
    imports = [ "${nixpkgs}/nixos/modules/virtualisation/google-compute-image.nix" ];
    image.baseName = "sourceos-${edition}-${arch}";
    # google-compute-config.nix empties the host name (mkDefault "") so that
    # the instance takes the name GCE gives it; flake.nix's default host
    # name of the edition is an mkDefault too, and two different mkDefault
    # values do not merge. GCE's name wins.
    networking.hostName = lib.mkOverride 900 "";
    system.stateVersion = lib.mkDefault "25.05";
  };
  nixos = lib.nixosSystem { inherit system; modules = [ gceModule ] ++ modules; };
in
assert lib.assertMsg (system == "x86_64-linux")
  "images/gce.nix: nixos-25.05's GCE image boots by BIOS GRUB, x86_64 only (asked for ${system})";
{
  image = nixos.config.system.build.image;
  toplevel = nixos.config.system.build.toplevel;
}
