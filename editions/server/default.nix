# Server edition: headless, managed over SSH.
{ lib, pkgs, ... }:
{
  imports = [ ../../modules/sourceos.nix ];

  sourceos.edition = "server";

  services.openssh.enable = true;
  services.openssh.settings.PasswordAuthentication = lib.mkDefault false;
  networking.firewall.enable = true;

  environment.systemPackages = with pkgs; [
    git
    htop
    tmux
  ];
}
