# SourceOS: editions (desktop, server, edge) as NixOS modules, the fleet's
# hosts, and the images built from them with nixpkgs' own image machinery.
{
  description = "SourceOS: NixOS editions, hosts and images";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";

  outputs = { self, nixpkgs }:
    let
      lib = nixpkgs.lib;
      systems = [ "x86_64-linux" "aarch64-linux" ];
      editions = [ "desktop" "server" "edge" ];
      forAllSystems = lib.genAttrs systems;

      # The installer profile each edition's ISO starts from.
      installer = {
        desktop = "installer/cd-dvd/installation-cd-graphical-base.nix";
        server = "installer/cd-dvd/installation-cd-minimal.nix";
        edge = "installer/cd-dvd/installation-cd-minimal.nix";
      };

      nixosModule = path: "${nixpkgs}/nixos/modules/${path}";

      arch = system: lib.removeSuffix "-linux" system;

      # image: one edition, booted as an installer ISO or over the network.
      image = { system, edition, base, extra ? { } }:
        lib.nixosSystem {
          inherit system;
          modules = [
            (nixosModule base)
            self.nixosModules.${edition}
            { networking.hostName = lib.mkDefault "sourceos-${edition}"; }
            extra
          ];
        };

      # The ISO lands at iso/sourceos-<edition>-<arch>.iso in its output.
      isoOf = system: edition: image {
        inherit system edition;
        base = installer.${edition};
        extra.isoImage.isoName = "sourceos-${edition}-${arch system}.iso";
      };
      netbootOf = system: edition: image {
        inherit system edition;
        base = "installer/netboot/netboot-minimal.nix";
      };

      # netboot: kernel, initrd and iPXE script side by side, named as the
      # script refers to them (bzImage on x86_64, Image on aarch64).
      netbootFiles = system: edition:
        let
          cfg = (netbootOf system edition).config;
          build = cfg.system.build;
          kernelFile = cfg.system.boot.loader.kernelFile;
        in
        nixpkgs.legacyPackages.${system}.linkFarm "sourceos-${edition}-netboot" [
          { name = kernelFile; path = "${build.kernel}/${kernelFile}"; }
          { name = "initrd"; path = "${build.netbootRamdisk}/initrd"; }
          { name = "netboot.ipxe"; path = "${build.netbootIpxeScript}/netboot.ipxe"; }
        ];

      editionPackages = system:
        lib.foldl' (acc: edition: acc // {
          "sourceos-${edition}-iso" = (isoOf system edition).config.system.build.isoImage;
          "sourceos-${edition}-system" = (isoOf system edition).config.system.build.toplevel;
          "sourceos-${edition}-netboot" = netbootFiles system edition;
        }) { } editions;

      hosts = {
        exit-x86_64 = "x86_64-linux";
        stable-x86_64 = "x86_64-linux";
        canary-x86_64 = "x86_64-linux";
        builder-aarch64 = "aarch64-linux";
      };

      host = name: system:
        lib.nixosSystem {
          inherit system;
          modules = [ self.nixosModules.sourceos (./hosts + "/${name}") ];
        };
    in
    {
      nixosModules = {
        sourceos = ./modules/sourceos.nix;
        desktop = ./editions/desktop;
        server = ./editions/server;
        edge = ./editions/edge;
        default = self.nixosModules.sourceos;
      };

      nixosConfigurations = lib.mapAttrs host hosts;

      # What editions/custom/flake.nix builds on: each edition's installer
      # profile, so a custom ISO starts where the edition's own ISO does.
      lib.installerModules = lib.genAttrs editions (edition: nixosModule installer.${edition});

      packages = forAllSystems editionPackages;

      # checks: every edition's system and every host of this system
      # evaluates and builds.
      checks = forAllSystems (system:
        lib.filterAttrs (name: _: lib.hasSuffix "-system" name) self.packages.${system}
        // lib.mapAttrs'
          (name: _: lib.nameValuePair "host-${name}" self.nixosConfigurations.${name}.config.system.build.toplevel)
          (lib.filterAttrs (_: s: s == system) hosts));

      formatter = forAllSystems (system: nixpkgs.legacyPackages.${system}.nixpkgs-fmt);
    };
}
