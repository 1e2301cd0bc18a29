# Server edition (headless): nixosModules.server.
{ ... }:
{
  imports = [ ../base/default.nix ];
  networking.firewall.enable = true;
}
