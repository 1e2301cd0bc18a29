# builder-aarch64: a builder with its own admin account, its packages
# passed in by the flake (syncdPkg, bootPkg) and a secret from sops-nix.
{ config, lib, pkgs, self, syncdPkg, bootPkg, ... }:
{
  imports = [ ../../profiles/linux-dev/default.nix ];

  networking.hostName = "builder-aarch64";

  sourceos.build.role = "builder-aarch64";
  sourceos.mesh.runtime = {
    enable = true;
    meshdPackage = self.packages.${pkgs.system}.meshd;
  };

  users.users.sourceos = {
    isNormalUser = true;
    extraGroups = [ "wheel" ];
    openssh.authorizedKeys.keys = [ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBMLJtJgbEKQqD5m3801Z2dndKqksAxNbzB5JBDYyIS/ fixture-key-no-private-half" ];
  };

  sops.validateSopsFiles = false;
  sops.secrets.katello-password = {
    sopsFile = "/etc/sourceos/secrets.yaml";
    owner = "sourceos-syncd";
    mode = "0400";
  };

  sourceos.syncd = {
    enable = true;
    package = syncdPkg;
    sourceosBoot.package = bootPkg;
    lifecycleEnv = "stable";
    flakeRef = "github:SourceOS-Linux/source-os#builder-aarch64";
    katelloPasswordFile = config.sops.secrets.katello-password.path;
  };
}
