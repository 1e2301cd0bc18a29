# exit-x86_64: the mesh exit node, its packages passed in by the flake.
{ self, lib, pkgs, syncdPkg, bootPkg, config, ... }:
{
  imports = [ ../../profiles/linux-stable/default.nix ];

  networking.hostName = "exit-x86_64";

  sourceos.build.role = "exit-x86_64";
  sourceos.mesh = {
    role = lib.mkForce "exit";
    runtime = {
      enable = true;
      meshdPackage = self.packages.${pkgs.system}.meshd;
      linkdPackage = self.packages.${pkgs.system}.meshd-linkd;
      exitdPackage = self.packages.${pkgs.system}.meshd-exitd;
    };
  };

  users.users.ops = {
    isNormalUser = true;
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
    flakeRef = "github:SourceOS-Linux/source-os#exit-x86_64";
    katelloPasswordFile = config.sops.secrets.katello-password.path;
  };
}
