# The `sourceos` options: the typed settings every SourceOS host and edition
# is described by. Hosts set these; nothing else in the tree invents free
# attributes.
{ config, lib, pkgs, ... }:

let
  cfg = config.sourceos;
  inherit (lib) mkOption mkEnableOption mkPackageOption mkIf mkMerge types;
in
{
  options.sourceos = {
    edition = mkOption {
      # The editions of catalog.json.
      type = types.nullOr (types.enum (builtins.attrNames (lib.importJSON ../catalog.json).editions));
      default = null;
      description = "The SourceOS edition this system is built from.";
    };

    build = {
      role = mkOption {
        type = types.enum [ "none" "builder" ];
        default = "none";
        description = "Whether this host builds SourceOS images for a channel.";
      };
      channel = mkOption {
        type = types.enum [ "stable" "candidate" "dev" ];
        default = "stable";
        description = "The release channel this host follows (and builds, when a builder).";
      };
    };

    mesh = {
      enable = mkEnableOption "the SourceOS mesh runtime";
      role = mkOption {
        type = types.enum [ "peer" "relay" "exit" ];
        default = "peer";
        description = ''
          The host's place in the mesh: a peer only reaches others, a relay
          routes the subnets it advertises, an exit carries peers' traffic to
          the internet.
        '';
      };
      package = mkPackageOption pkgs "tailscale" { };
      advertiseRoutes = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "10.40.0.0/16" ];
        description = "Subnets a relay advertises to the mesh.";
      };
    };
  };

  config = mkMerge [
    {
      environment.etc."sourceos/channel".text = cfg.build.channel + "\n";
    }

    (mkIf cfg.mesh.enable {
      services.tailscale = {
        enable = true;
        package = cfg.mesh.package;
        useRoutingFeatures = if cfg.mesh.role == "peer" then "client" else "server";
        extraSetFlags =
          lib.optional (cfg.mesh.role == "exit") "--advertise-exit-node"
          ++ lib.optional (cfg.mesh.advertiseRoutes != [ ])
            ("--advertise-routes=" + lib.concatStringsSep "," cfg.mesh.advertiseRoutes);
      };
      networking.firewall.trustedInterfaces = [ "tailscale0" ];
    })

    (mkIf (cfg.build.role == "builder") {
      nix.settings = {
        experimental-features = [ "nix-command" "flakes" ];
        trusted-users = [ "root" "@wheel" ];
        max-jobs = "auto";
      };
      nix.gc = {
        automatic = true;
        options = "--delete-older-than 14d";
      };
    })

    {
      assertions = [
        {
          assertion = cfg.mesh.role != "relay" || cfg.mesh.advertiseRoutes != [ ];
          message = "sourceos.mesh.role = \"relay\" needs sourceos.mesh.advertiseRoutes.";
        }
      ];
    }
  ];
}
