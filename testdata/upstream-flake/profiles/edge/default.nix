# Edge edition (mesh-ready): nixosModules.edge.
{ ... }:
{
  imports = [ ../base/default.nix ];
  sourceos.mesh.enable = true;
}
