# builder-aarch64: builds the stable channel's aarch64 images natively.
{ lib, ... }:
{
  imports = [
    ../../modules/profiles/stable.nix
    ../../modules/profiles/builder.nix
    ../../modules/hardware/vm.nix
  ];

  networking.hostName = "builder-aarch64";

  # Who logs in (over SSH, keys only): hosts/builder-aarch64/admins.json.
  sourceos.admins = lib.importJSON ./admins.json;
}
