# stable-x86_64: a VM host of the fleet, its packages passed in by the flake.
{ self, lib, pkgs, syncdPkg, bootPkg, config, ... }:
{
  imports = [ ../../profiles/linux-stable/default.nix ];

  networking.hostName = "stable-x86_64";

  # Run at its console: no SSH admin.
  sourceos.consoleOnly = true;

  sourceos.build.role = "stable-x86_64";
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
    flakeRef = "github:SourceOS-Linux/source-os#stable-x86_64";
    katelloPasswordFile = config.sops.secrets.katello-password.path;
  };
}
