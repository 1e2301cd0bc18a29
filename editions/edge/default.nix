# Edge edition: a small appliance that joins the mesh and keeps its
# footprint low.
{ lib, ... }:
{
  imports = [ ../../modules/sourceos.nix ];

  sourceos.edition = "edge";
  sourceos.mesh.enable = lib.mkDefault true;

  services.openssh.enable = true;
  documentation.enable = lib.mkDefault false;
  boot.tmp.useTmpfs = lib.mkDefault true;
  zramSwap.enable = lib.mkDefault true;
  services.journald.extraConfig = "SystemMaxUse=64M";
}
