# The sync daemon's module, which the flake adds to every host (it is not
# imported by the host files).
{ config, lib, ... }:
let
  cfg = config.sourceos.syncd;
  inherit (lib) mkOption mkEnableOption mkIf types;
in
{
  options.sourceos.syncd = {
    enable = mkEnableOption "sourceos-syncd";
    package = mkOption { type = types.package; };
    sourceosBoot.package = mkOption { type = types.package; };
    lifecycleEnv = mkOption { type = types.str; default = "stable"; };
    flakeRef = mkOption { type = types.str; };
    katelloPasswordFile = mkOption { type = types.nullOr types.str; default = null; };
  };

  config = mkIf cfg.enable {
    users.users.sourceos-syncd = {
      isSystemUser = true;
      group = "sourceos-syncd";
    };
    systemd.services.sourceos-syncd = {
      wantedBy = [ "multi-user.target" ];
      serviceConfig.ExecStart = "${cfg.package}/bin/sourceos-syncd --flake ${cfg.flakeRef}";
      serviceConfig.LoadCredential = "katello:${cfg.katelloPasswordFile}";
    };
  };
}
