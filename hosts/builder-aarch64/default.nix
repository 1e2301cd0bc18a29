# builder-aarch64: builds the stable channel's aarch64 images natively.
{ ... }:
{
  imports = [
    ../../modules/profiles/stable.nix
    ../../modules/profiles/builder.nix
    ../../modules/hardware/vm.nix
  ];

  networking.hostName = "builder-aarch64";
}
