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
      allowedTCPPorts = mkOption {
        type = types.listOf types.port;
        default = [ ];
        example = [ 9100 ];
        description = ''
          TCP ports mesh peers may reach on this host. Nothing else is
          open to the mesh: the mesh interface is not a trusted interface.
        '';
      };
      allowedUDPPorts = mkOption {
        type = types.listOf types.port;
        default = [ ];
        description = "UDP ports mesh peers may reach on this host.";
      };
    };

    admins = mkOption {
      type = types.listOf (types.submodule {
        options = {
          name = mkOption {
            type = types.strMatching "[a-z_][a-z0-9_-]*";
            description = "The admin's user name on the host.";
          };
          sshKeys = mkOption {
            type = types.listOf types.singleLineStr;
            default = [ ];
            description = "The admin's SSH public keys, one authorized_keys line each.";
          };
        };
      });
      default = [ ];
      example = [ { name = "ops"; sshKeys = [ "ssh-ed25519 AAAA… ops@example" ]; } ];
      description = ''
        Who administers the host: each admin becomes a normal user in the
        wheel group that logs in over SSH with these keys only. Hosts read
        them from hosts/<host>/admins.json.
      '';
    };

    consoleOnly = mkOption {
      type = types.bool;
      default = false;
      description = ''
        The host is run at its console: nobody needs to log in over SSH, so
        the host facts accepts it without admins.
      '';
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
      # Mesh peers reach the ports the host declares, not the whole host.
      networking.firewall.interfaces.${config.services.tailscale.interfaceName} = {
        allowedTCPPorts = cfg.mesh.allowedTCPPorts;
        allowedUDPPorts = cfg.mesh.allowedUDPPorts;
      };
    })

    (mkIf (cfg.admins != [ ]) {
      users.users = lib.listToAttrs (map
        (a: lib.nameValuePair a.name {
          isNormalUser = true;
          extraGroups = [ "wheel" ];
          openssh.authorizedKeys.keys = a.sshKeys;
        })
        cfg.admins);
      # Admins have keys, not passwords: sudo cannot ask them for one.
      security.sudo.wheelNeedsPassword = lib.mkDefault false;
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
