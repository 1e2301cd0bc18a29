# SourceOS: editions as NixOS modules, the fleet's hosts, the images built
# from them with nixpkgs' own image machinery, and the NixOS tests that boot
# each edition. What exists (editions, and the artifacts built for them) is
# declared once, in catalog.json: this file reads it, as the Go pipeline
# does. nixpkgs is pinned by flake.lock; docs/nixos-audit.md records every
# option this tree uses against that release.
{
  description = "SourceOS: NixOS editions, hosts and images";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";

  outputs = { self, nixpkgs }:
    let
      lib = nixpkgs.lib;
      catalog = lib.importJSON ./catalog.json;
      systems = [ "x86_64-linux" "aarch64-linux" ];
      editions = builtins.attrNames catalog.editions;
      forAllSystems = lib.genAttrs systems;
      arch = system: lib.removeSuffix "-linux" system;

      kinds = import ./images { inherit nixpkgs lib; };

      # The modules of an edition's system: the edition, and its default
      # host name from the catalog.
      editionModules = edition: [
        self.nixosModules.${catalog.editions.${edition}.module}
        { networking.hostName = lib.mkDefault catalog.editions.${edition}.hostname; }
      ];

      # One artifact of the catalog for one edition and system:
      # { name = the package name of its attribute; image; toplevel }.
      # The catalog's attributes of this flake are all
      # packages.{system}.<name>.
      expand = template: system: edition:
        lib.replaceStrings [ "{system}" "{arch}" "{edition}" ] [ system (arch system) edition ] template;
      packageName = template: system: edition:
        let attr = expand template system edition; prefix = "packages.${system}.";
        in if lib.hasPrefix prefix attr then lib.removePrefix prefix attr
        else throw "catalog.json: attribute ${attr} is not under ${prefix}";

      artifactPackages = system: artifact: edition:
        let
          built = kinds.${artifact.kind} {
            inherit system edition;
            modules = editionModules edition;
            installer = catalog.editions.${edition}.installer or "installer/cd-dvd/installation-cd-minimal.nix";
          };
        in
        [ (lib.nameValuePair (packageName artifact.attribute system edition) built.image) ]
        ++ lib.optional (artifact ? systemAttribute)
          (lib.nameValuePair (packageName artifact.systemAttribute system edition) built.toplevel);

      catalogPackages = system:
        lib.listToAttrs (lib.concatMap
          (artifact:
            lib.optionals (builtins.elem (arch system) artifact.arches)
              (lib.concatMap (artifactPackages system artifact) artifact.editions))
          (builtins.attrValues catalog.artifacts));

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

      # The qcow2 packages of a system by edition: those of the catalog's
      # qcow2 artifacts built for it.
      diskImages = system:
        lib.listToAttrs (lib.concatMap
          (artifact:
            lib.optionals (artifact.kind == "qcow2" && builtins.elem (arch system) artifact.arches)
              (map (edition: lib.nameValuePair edition self.packages.${system}.${packageName artifact.attribute system edition})
                artifact.editions))
          (builtins.attrValues catalog.artifacts));

      # The NixOS tests of tests/: edition-<edition>-boot for every edition,
      # the opt-in install-to-disk test of the server edition and the
      # opt-in boot of every qcow2 package (image-<edition>-qcow2-boot).
      tests = system: import ./tests {
        inherit lib editions;
        pkgs = nixpkgs.legacyPackages.${system};
        # The edition modules by edition name.
        modules = lib.mapAttrs (_: e: self.nixosModules.${e.module}) catalog.editions;
        diskImages = diskImages system;
      };
    in
    {
      # Modules are attribute sets (not bare paths) so that every Nix that
      # runs `nix flake check` accepts them, 2.8 included. An edition's
      # module is editions/<name>.
      nixosModules =
        lib.mapAttrs'
          (name: e: lib.nameValuePair e.module { imports = [ (./editions + "/${name}") ]; })
          catalog.editions
        // {
          sourceos = { imports = [ ./modules/sourceos.nix ]; };
          default = self.nixosModules.sourceos;
        };

      nixosConfigurations = lib.mapAttrs host hosts;

      packages = forAllSystems catalogPackages;

      # checks: every artifact's system and every host of this system
      # evaluates and builds, and every edition boots (tests/).
      checks = forAllSystems (system:
        lib.filterAttrs (name: _: lib.hasSuffix "-system" name) self.packages.${system}
        // lib.mapAttrs'
          (name: _: lib.nameValuePair "host-${name}" self.nixosConfigurations.${name}.config.system.build.toplevel)
          (lib.filterAttrs (_: s: s == system) hosts)
        // (tests system).boot);

      # Tests too heavy for `nix flake check` (legacyPackages is not built
      # by it): `mage test:install server` builds
      # legacyPackages.<system>.tests.edition-server-install, `mage
      # test:disk <edition>` legacyPackages.<system>.tests.image-<edition>-qcow2-boot.
      legacyPackages = forAllSystems (system: {
        tests = (tests system).boot // (tests system).install // (tests system).disk;
      });

      formatter = forAllSystems (system: nixpkgs.legacyPackages.${system}.nixpkgs-fmt);
    };
}
