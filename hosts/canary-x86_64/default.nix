# canary-x86_64: builds the dev channel ahead of the fleet.
{ lib, ... }:
{
  imports = [
    ../../modules/profiles/canary.nix
    ../../modules/profiles/builder.nix
    ../../modules/hardware/vm.nix
  ];

  networking.hostName = "canary-x86_64";

  # Who logs in (over SSH, keys only): hosts/canary-x86_64/admins.json.
  sourceos.admins = lib.importJSON ./admins.json;

  sourceos.mesh.enable = true;
}
