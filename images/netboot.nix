# An edition booted over the network: kernel, initrd and iPXE script side
# by side, named as the script refers to them (the kernel file is
# system.boot.loader.kernelFile: bzImage on x86_64, Image on aarch64).
# The netboot profile brings installation-device.nix, which turns on
# wpa_supplicant (networking.wireless) by default; NixOS refuses it next to
# NetworkManager, so NetworkManager wins wherever it is on (as in nixpkgs'
# graphical installer).
{ nixpkgs, lib }:
{ system, edition, modules, ... }:
let
  netbootModule = { config, lib, ... }: {
    imports = [ "${nixpkgs}/nixos/modules/installer/netboot/netboot-minimal.nix" ];
    networking.wireless.enable =
      lib.mkIf config.networking.networkmanager.enable (lib.mkImageMediaOverride false);
  };
  nixos = lib.nixosSystem { inherit system; modules = [ netbootModule ] ++ modules; };
  cfg = nixos.config;
  build = cfg.system.build;
  kernelFile = cfg.system.boot.loader.kernelFile;
in
{
  image = nixpkgs.legacyPackages.${system}.linkFarm "sourceos-${edition}-netboot" [
    { name = kernelFile; path = "${build.kernel}/${kernelFile}"; }
    { name = "initrd"; path = "${build.netbootRamdisk}/initrd"; }
    { name = "netboot.ipxe"; path = "${build.netbootIpxeScript}/netboot.ipxe"; }
  ];
  toplevel = build.toplevel;
}
