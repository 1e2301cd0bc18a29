# A flake shaped like the SourceOS hosts tree it stands for: every host
# gets extra module arguments (self, syncdPkg, bootPkg) through
# specialArgs, and modules from flake inputs (sops-nix) that are not
# available offline. Only the host modules are evaluated by the tests
# (module mode, hosts/contracts.json); this file shows the wiring that
# the contracts file stands in for.
{
  description = "Fixture: hosts that take extra module arguments";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";
    sops-nix = {
      url = "github:Mic92/sops-nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs = { self, nixpkgs, sops-nix }:
    let
      lib = nixpkgs.lib;
      host = name: system:
        let
          pkgs = nixpkgs.legacyPackages.${system};
          syncdPkg = pkgs.writeShellScriptBin "sourceos-syncd" "exit 0";
          bootPkg = pkgs.writeShellScriptBin "sourceos-boot" "exit 0";
        in
        lib.nixosSystem {
          inherit system;
          specialArgs = { inherit self syncdPkg bootPkg; };
          modules = [
            sops-nix.nixosModules.sops
            self.nixosModules.sourceos-syncd
            (./hosts + "/${name}/default.nix")
          ];
        };
    in
    {
      nixosModules.sourceos-syncd = import ./modules/nixos/sourceos-syncd/default.nix;

      packages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (system:
        let pkgs = nixpkgs.legacyPackages.${system}; in {
          meshd = pkgs.writeShellScriptBin "meshd" "exit 0";
          meshd-linkd = pkgs.writeShellScriptBin "meshd-linkd" "exit 0";
          meshd-exitd = pkgs.writeShellScriptBin "meshd-exitd" "exit 0";
        });

      nixosConfigurations = {
        builder-aarch64 = host "builder-aarch64" "aarch64-linux";
        canary-x86_64 = host "canary-x86_64" "x86_64-linux";
        stable-x86_64 = host "stable-x86_64" "x86_64-linux";
        exit-x86_64 = host "exit-x86_64" "x86_64-linux";
      };
    };
}
