# The fixture's own options: build role and channel, the mesh runtime,
# and who can log in.
{ lib, ... }:
let
  inherit (lib) mkOption mkEnableOption types;
in
{
  options.sourceos = {
    build = {
      role = mkOption { type = types.str; default = "none"; };
      channel = mkOption { type = types.enum [ "stable" "candidate" "dev" ]; default = "stable"; };
    };
    mesh = {
      role = mkOption { type = types.enum [ "peer" "relay" "exit" ]; default = "peer"; };
      runtime = {
        enable = mkEnableOption "the mesh runtime";
        meshdPackage = mkOption { type = types.nullOr types.package; default = null; };
        linkdPackage = mkOption { type = types.nullOr types.package; default = null; };
        exitdPackage = mkOption { type = types.nullOr types.package; default = null; };
      };
    };
    consoleOnly = mkOption { type = types.bool; default = false; };
  };
}
