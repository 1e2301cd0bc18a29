# A stand-in for nixpkgs with just enough of its interface for the
# repository's flake.nix, images/ and tests/ to be evaluated offline down to
# the names of their outputs. Nothing here builds: derivations are plain
# attribute sets with a name, NixOS systems are attribute sets with the
# attributes flake.nix and images/ read. A system's derivations carry its
# host name (the edition's default one, set by flake.nix), so that the
# systems of two editions are told apart.
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
        qemu_test = stub "qemu";
        OVMF = {
          firmware = "${(stub "OVMF-fd").outPath}/FV/OVMF_CODE.fd";
          variables = "${(stub "OVMF-fd").outPath}/FV/OVMF_VARS.fd";
        };
      };
      # The host name the modules give the system: the last non-empty
      # networking.hostName that an attribute-set module sets (the edition's
      # default one comes after an image kind's own module).
      hostNameOf = modules:
        let
          named = builtins.filter
            (m: builtins.isAttrs m && m ? networking && m.networking ? hostName && m.networking.hostName != "")
            modules;
        in
        if named == [ ] then "nixos" else (builtins.elemAt named (builtins.length named - 1)).networking.hostName;
    in
    {
      lib = lib // {
        nixosSystem = { system, modules }:
          let host = hostNameOf modules; in
          {
            inherit modules;
            config.system.build = {
              toplevel = stub "nixos-system-${host}";
              isoImage = stub "nixos-iso-${host}";
              kernel = stub "linux";
              netbootRamdisk = stub "initrd-${host}";
              netbootIpxeScript = stub "ipxe-${host}";
              # virtualisation/disk-image.nix, google-compute-image.nix
              image = stub "nixos-disk-image-${host}";
            };
            config.system.boot.loader.kernelFile = "bzImage";
          };
      };
      legacyPackages = lib.genAttrs systems pkgsFor;
    };
}
