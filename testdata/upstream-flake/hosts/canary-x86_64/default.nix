# canary-x86_64: a VM host of the fleet, its packages passed in by the flake.
{ self, lib, pkgs, syncdPkg, bootPkg, config, ... }:
{
  imports = [ ../../profiles/linux-candidate/default.nix ];

  networking.hostName = "canary-x86_64";

  users.users.ops = {
    isNormalUser = true;
    extraGroups = [ "wheel" ];
    openssh.authorizedKeys.keys = [ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBMLJtJgbEKQqD5m3801Z2dndKqksAxNbzB5JBDYyIS/ fixture-key-no-private-half" ];
  };

  sourceos.build.role = "canary-x86_64";
  sourceos.mesh.runtime = {
    enable = true;
    meshdPackage = self.packages.${pkgs.system}.meshd;
    linkdPackage = self.packages.${pkgs.system}.meshd-linkd;
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
    flakeRef = "github:SourceOS-Linux/source-os#canary-x86_64";
    katelloPasswordFile = config.sops.secrets.katello-password.path;
  };
}
