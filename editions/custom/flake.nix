# The fixed flake of a custom build. The builder copies this file unchanged
# into a build directory next to spec.json (the validated spec) and, only
# when the spec asks for one, snippet.nix. No value from the spec is ever
# spliced into Nix code: it is read with builtins.fromJSON and used as data.
#
# spec.json: { "edition": "desktop"|"server"|"edge", "arch": "x86_64"|"aarch64",
#              "hostname": str, "packages": [ nixpkgs attribute path, ... ],
#              "services": [ "openssh"|"docker", ... ],
#              "users": [ { "name": str, "groups": [ str, ... ] }, ... ],
#              "hasSnippet": bool — true when snippet.nix sits beside it }
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
      system = "${spec.arch}-linux";

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

      # The edition's ISO module (installer profile and file name) names the
      # image sourceos-<edition>-<arch>.iso with lib.mkForce; a custom image
      # is named sourceos-custom-<edition>-<arch>.iso, one priority above.
      custom = lib.nixosSystem {
        inherit system;
        modules = [
          sourceos.nixosModules."${spec.edition}-iso"
          sourceos.nixosModules.${spec.edition}
          customModule
          { image.baseName = lib.mkOverride 40 "sourceos-custom-${spec.edition}-${spec.arch}"; }
        ]
        ++ map serviceModule (spec.services or [ ])
        ++ lib.optional wantSnippet ./snippet.nix;
      };
    in
    {
      nixosConfigurations.custom = custom;
      packages.${system} = {
        # The edition's output names, so build:custom runs the same pipeline
        # as build:<edition>.
        "sourceos-${spec.edition}-iso" = custom.config.system.build.isoImage;
        "sourceos-${spec.edition}-system" = custom.config.system.build.toplevel;
      };
    };
}
