# canary-x86_64: builds the dev channel ahead of the fleet.
{ ... }:
{
  imports = [
    ../../modules/profiles/canary.nix
    ../../modules/profiles/builder.nix
    ../../modules/hardware/vm.nix
  ];

  networking.hostName = "canary-x86_64";

  sourceos.mesh.enable = true;
}
