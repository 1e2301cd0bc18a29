# Desktop edition: a GNOME workstation.
{ lib, pkgs, ... }:
{
  imports = [ ../../modules/sourceos.nix ];

  sourceos.edition = "desktop";

  services.xserver.enable = true;
  services.xserver.displayManager.gdm.enable = true;
  services.xserver.desktopManager.gnome.enable = true;

  # GDM and GNOME are under services.xserver in nixos-25.05 (they move to
  # services.displayManager / services.desktopManager in 25.11).
  networking.networkmanager.enable = true;
  # PipeWire is the sound server, PulseAudio included; NixOS refuses
  # PulseAudio itself next to pipewire.pulse (the graphical installer
  # profile turned it on in older releases).
  services.pulseaudio.enable = false;
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
