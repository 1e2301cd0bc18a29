# A stand-in for nixpkgs with just enough of its interface for the
# repository's flake.nix and tests/ to be evaluated offline down to the
# names of their outputs. Nothing here builds: derivations are plain
# attribute sets with a name, NixOS systems are attribute sets with the
# attributes flake.nix reads.
{
  outputs = { self }:
    let
      lib = import ./lib.nix;
      systems = [ "x86_64-linux" "aarch64-linux" ];
      stub = name: { type = "derivation"; inherit name; outPath = "/nix/store/00000000000000000000000000000000-${name}"; };
      pkgsFor = system: {
        inherit lib;
        stdenv.hostPlatform = { inherit system; efiArch = if system == "x86_64-linux" then "x64" else "aa64"; };
        testers.runNixOSTest = test: stub test.name // { inherit (test) name; test = test; };
        linkFarm = name: _: stub name;
        nixpkgs-fmt = stub "nixpkgs-fmt";
      };
    in
    {
      lib = lib // {
        nixosSystem = { system, modules }: {
          inherit modules;
          config.system.build = {
            toplevel = stub "nixos-system";
            isoImage = stub "nixos-iso";
            kernel = stub "linux";
            netbootRamdisk = stub "initrd";
            netbootIpxeScript = stub "ipxe";
          };
          config.system.boot.loader.kernelFile = "bzImage";
        };
      };
      legacyPackages = lib.genAttrs systems pkgsFor;
    };
}
