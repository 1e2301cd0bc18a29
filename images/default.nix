# The image kinds of catalog.json, one file each. Every kind is a function
#   { system, edition, modules } -> { image; toplevel; }
# of the Nix system, the edition's name and the modules that make the
# edition's system (the edition module and its default host name): image
# is the derivation the pipeline copies its files from, toplevel the NixOS
# system whose closure the cache and the SBOM describe.
{ nixpkgs, lib }:
let
  args = { inherit nixpkgs lib; };
in
{
  iso = import ./iso.nix args;
  netboot = import ./netboot.nix args;
  qcow2 = import ./qcow2.nix args;
  gce = import ./gce.nix args;
}
