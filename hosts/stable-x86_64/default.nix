# stable-x86_64: builds the stable channel's x86_64 images and is itself a
# mesh peer.
{ lib, ... }:
{
  imports = [
    ../../modules/profiles/stable.nix
    ../../modules/profiles/builder.nix
    ../../modules/hardware/vm.nix
  ];

  networking.hostName = "stable-x86_64";

  # Who logs in (over SSH, keys only): hosts/stable-x86_64/admins.json.
  sourceos.admins = lib.importJSON ./admins.json;

  sourceos.mesh.enable = true;
}
