# Desktop edition: a GNOME workstation.
{ lib, pkgs, ... }:
{
  imports = [ ../../modules/sourceos.nix ];

  sourceos.edition = "desktop";

  services.xserver.enable = true;
  services.xserver.displayManager.gdm.enable = true;
  services.xserver.desktopManager.gnome.enable = true;

  networking.networkmanager.enable = true;
  services.pipewire = {
    enable = true;
    pulse.enable = true;
  };
  services.printing.enable = true;
  hardware.bluetooth.enable = lib.mkDefault true;

  environment.systemPackages = with pkgs; [
    firefox
    gnome-tweaks
    git
  ];
}
