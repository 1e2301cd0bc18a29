# An edition's installer ISO, named sourceos-<edition>-<arch>.iso. In
# nixos-25.05, iso-image.nix writes iso/${image.baseName}.iso and defines
# image.baseName itself ("nixos-<edition>-<label>-<system>"), so the name
# is forced here; isoImage.isoName is only an alias of image.fileName there
# and does not name the file. The installer profile comes from the
# edition's catalog entry.
{ nixpkgs, lib }:
{ system, edition, modules, installer }:
let
  arch = lib.removeSuffix "-linux" system;
  isoModule = {
    imports = [ "${nixpkgs}/nixos/modules/${installer}" ];
    image.baseName = lib.mkForce "sourceos-${edition}-${arch}";
  };
  nixos = lib.nixosSystem { inherit system; modules = [ isoModule ] ++ modules; };
in
{
  image = nixos.config.system.build.isoImage;
  toplevel = nixos.config.system.build.toplevel;
  module = isoModule;
}
