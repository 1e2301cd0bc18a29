# A Google Compute Engine image of an edition (disk.raw in a tar.gz).
{ nixpkgs, lib }:
{ system, edition, modules, ... }:
throw "images/gce.nix: not written yet (${edition}, ${system})"
