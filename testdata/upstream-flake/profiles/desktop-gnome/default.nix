# Desktop edition (GNOME), as the SourceOS tree names it: nixosModules.desktop-gnome.
{ ... }:
{
  imports = [ ../base/default.nix ];
  services.xserver.enable = true;
  services.displayManager.gdm.enable = true;
  services.desktopManager.gnome.enable = true;
}
