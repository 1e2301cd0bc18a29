# stable-x86_64: builds the stable channel's x86_64 images and is itself a
# mesh peer.
{ ... }:
{
  imports = [
    ../../modules/profiles/stable.nix
    ../../modules/profiles/builder.nix
    ../../modules/hardware/vm.nix
  ];

  networking.hostName = "stable-x86_64";

  sourceos.mesh.enable = true;
}
