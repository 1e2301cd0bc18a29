# A preinstalled disk image of an edition for QEMU/KVM (qcow2).
{ nixpkgs, lib }:
{ system, edition, modules, ... }:
throw "images/qcow2.nix: not written yet (${edition}, ${system})"
