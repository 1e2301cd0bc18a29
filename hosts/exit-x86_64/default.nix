# exit-x86_64: the mesh exit node. It carries peers' traffic to the
# internet, so the mesh role is forced to "exit" whatever a profile says.
{ lib, pkgs, ... }:
{
  imports = [
    ../../modules/profiles/stable.nix
    ../../modules/hardware/vm.nix
  ];

  networking.hostName = "exit-x86_64";

  sourceos.mesh.enable = true;
  sourceos.mesh.role = lib.mkForce "exit";
  sourceos.mesh.package = pkgs.tailscale;

  # Who logs in (over SSH, keys only): hosts/exit-x86_64/admins.json.
  sourceos.admins = lib.importJSON ./admins.json;
}
