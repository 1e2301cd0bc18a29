# The fixed flake of a custom build. The builder copies this file unchanged
# into a build directory next to spec.json (the validated, normalised spec),
# edition.json (what the catalog says of the spec's edition) and, only when
# the spec asks for one, snippet.nix. No value from the spec is ever
# spliced into Nix code: it is read with builtins.fromJSON and used as data.
#
# spec.json: { "edition": str, "arch": "x86_64"|"aarch64", "hostname": str,
#              "packages": [ nixpkgs attribute path, ... ],
#              "services": [ "openssh"|"docker", ... ],
#              "users": [ { "name": str, "groups": [ str, ... ] }, ... ],
#              "hasSnippet": bool — true when snippet.nix sits beside it }
# edition.json: { "module": the sourceos flake's nixosModules attribute,
#                 "installer": nixpkgs module the installer ISO starts from }
#
# The outputs are named custom-*, never like a release's: a custom image is
# a different kind of artifact (docs/signing.md).
{
  description = "SourceOS custom image";

  # Override with --override-input sourceos <ref> (e.g. a local checkout).
  # nixpkgs is SourceOS's own, as its flake.lock pins it: this directory has
  # no lock file of its own, and the builder passes --no-write-lock-file, so
  # the one input resolved here is the overridden sourceos.
  inputs.sourceos.url = "github:socioprophet/sourceos";
  inputs.nixpkgs.follows = "sourceos/nixpkgs";

  outputs = { self, sourceos, nixpkgs }:
    let
      lib = nixpkgs.lib;
      spec = builtins.fromJSON (builtins.readFile ./spec.json);
      edition = builtins.fromJSON (builtins.readFile ./edition.json);
      system = "${spec.arch}-linux";
      baseName = "sourceos-custom-${spec.edition}-${spec.arch}";

      wantSnippet = spec.hasSnippet or false;

      # The services a spec may turn on, and what each one means.
      serviceModules = {
        openssh = { services.openssh.enable = true; };
        docker = { virtualisation.docker.enable = true; };
      };
      serviceModule = name:
        serviceModules.${name} or (throw "spec.json: service not allowed: ${builtins.toJSON name}");

      customModule = { pkgs, ... }: {
        networking.hostName = spec.hostname;
        environment.systemPackages =
          map (attr: lib.getAttrFromPath (lib.splitString "." attr) pkgs) (spec.packages or [ ]);
        users.users = builtins.listToAttrs (map
          (u: {
            name = u.name;
            value = { isNormalUser = true; extraGroups = u.groups or [ ]; };
          })
          (spec.users or [ ]));
      };

      modules = [
        sourceos.nixosModules.${edition.module}
        customModule
      ]
      ++ map serviceModule (spec.services or [ ])
      ++ lib.optional wantSnippet ./snippet.nix;

      # The installer ISO, from the edition's installer profile.
      iso = lib.nixosSystem {
        inherit system;
        modules = [
          "${nixpkgs}/nixos/modules/${edition.installer}"
          { image.baseName = lib.mkForce baseName; }
        ] ++ modules;
      };

      # The netboot set, as nixpkgs' netboot profile lays it out (kernel
      # named after the platform's kernel file, initrd, netboot.ipxe).
      netboot = lib.nixosSystem {
        inherit system;
        modules = [
          "${nixpkgs}/nixos/modules/installer/netboot/netboot-minimal.nix"
          ({ config, lib, ... }: {
            networking.wireless.enable =
              lib.mkIf config.networking.networkmanager.enable (lib.mkImageMediaOverride false);
          })
        ] ++ modules;
      };
      netbootBuild = netboot.config.system.build;
      kernelFile = netboot.config.system.boot.loader.kernelFile;
    in
    {
      nixosConfigurations.custom = iso;
      nixosConfigurations.custom-netboot = netboot;
      packages.${system} = {
        custom-iso = iso.config.system.build.isoImage;
        custom-system = iso.config.system.build.toplevel;
        custom-netboot = nixpkgs.legacyPackages.${system}.linkFarm "${baseName}-netboot" [
          { name = kernelFile; path = "${netbootBuild.kernel}/${kernelFile}"; }
          { name = "initrd"; path = "${netbootBuild.netbootRamdisk}/initrd"; }
          { name = "netboot.ipxe"; path = "${netbootBuild.netbootIpxeScript}/netboot.ipxe"; }
        ];
        custom-netboot-system = netbootBuild.toplevel;
      };
    };
}
