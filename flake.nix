# SourceOS: editions (desktop, server, edge) as NixOS modules, the fleet's
# hosts, the images built from them with nixpkgs' own image machinery, and
# the NixOS tests that boot each edition. nixpkgs is pinned by flake.lock;
# docs/nixos-audit.md records every option this tree uses against that
# release.
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

      # An edition's installer ISO, named sourceos-<edition>-<arch>.iso.
      # In nixos-25.05, iso-image.nix writes iso/${image.baseName}.iso and
      # defines image.baseName itself ("nixos-<edition>-<label>-<system>"),
      # so the name is forced here; isoImage.isoName is only an alias of
      # image.fileName there and does not name the file.
      isoModule = edition: { lib, pkgs, ... }: {
        imports = [ (nixosModule installer.${edition}) ];
        image.baseName = lib.mkForce "sourceos-${edition}-${arch pkgs.stdenv.hostPlatform.system}";
      };

      # An edition booted over the network. The netboot profile brings
      # installation-device.nix, which turns on wpa_supplicant
      # (networking.wireless) by default; NixOS refuses it next to
      # NetworkManager, which the desktop edition uses, so NetworkManager
      # wins wherever it is on (as in nixpkgs' graphical installer).
      netbootModule = { config, lib, ... }: {
        imports = [ (nixosModule "installer/netboot/netboot-minimal.nix") ];
        networking.wireless.enable =
          lib.mkIf config.networking.networkmanager.enable (lib.mkImageMediaOverride false);
      };

      # image: one edition on top of the module that makes it an image.
      image = { system, edition, base }:
        lib.nixosSystem {
          inherit system;
          modules = [
            base
            self.nixosModules.${edition}
            { networking.hostName = lib.mkDefault "sourceos-${edition}"; }
          ];
        };

      isoOf = system: edition: image { inherit system edition; base = isoModule edition; };
      netbootOf = system: edition: image { inherit system edition; base = netbootModule; };

      # netboot: kernel, initrd and iPXE script side by side, named as the
      # script refers to them: the kernel file is
      # system.boot.loader.kernelFile (bzImage on x86_64, Image on aarch64).
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
        lib.foldl'
          (acc: edition: acc // {
            "sourceos-${edition}-iso" = (isoOf system edition).config.system.build.isoImage;
            "sourceos-${edition}-system" = (isoOf system edition).config.system.build.toplevel;
            "sourceos-${edition}-netboot" = netbootFiles system edition;
          })
          { }
          editions;

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

      # The NixOS tests of tests/: edition-<edition>-boot for every edition
      # and the opt-in install-to-disk test of the server edition.
      tests = system: import ./tests {
        inherit lib;
        pkgs = nixpkgs.legacyPackages.${system};
        modules = self.nixosModules;
        inherit editions;
      };
    in
    {
      # Modules are attribute sets (not bare paths) so that every Nix that
      # runs `nix flake check` accepts them, 2.8 included.
      nixosModules = {
        sourceos = { imports = [ ./modules/sourceos.nix ]; };
        desktop = { imports = [ ./editions/desktop ]; };
        server = { imports = [ ./editions/server ]; };
        edge = { imports = [ ./editions/edge ]; };
        # What editions/custom/flake.nix builds on: each edition's ISO
        # module (its installer profile and file name), so a custom ISO
        # starts where the edition's own ISO does.
        desktop-iso = isoModule "desktop";
        server-iso = isoModule "server";
        edge-iso = isoModule "edge";
        default = self.nixosModules.sourceos;
      };

      nixosConfigurations = lib.mapAttrs host hosts;

      packages = forAllSystems editionPackages;

      # checks: every edition's system and every host of this system
      # evaluates and builds, and every edition boots (tests/).
      checks = forAllSystems (system:
        lib.filterAttrs (name: _: lib.hasSuffix "-system" name) self.packages.${system}
        // lib.mapAttrs'
          (name: _: lib.nameValuePair "host-${name}" self.nixosConfigurations.${name}.config.system.build.toplevel)
          (lib.filterAttrs (_: s: s == system) hosts)
        // (tests system).boot);

      # Tests too heavy for `nix flake check` (legacyPackages is not built
      # by it): `mage test:install server` builds
      # legacyPackages.<system>.tests.edition-server-install.
      legacyPackages = forAllSystems (system: {
        tests = (tests system).boot // (tests system).install;
      });

      formatter = forAllSystems (system: nixpkgs.legacyPackages.${system}.nixpkgs-fmt);
    };
}
