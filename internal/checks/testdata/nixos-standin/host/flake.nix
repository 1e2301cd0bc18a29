# A flake whose nixosConfigurations.h has the shape of an evaluated NixOS
# system (options with isDefined, value and definitionsWithLocations;
# config), built by hand: what nixos-eval.nix reads, without nixpkgs.
# The test writes the stand-in nixpkgs' path in place of @NIXPKGS@.
{
  inputs.nixpkgs.url = "path:@NIXPKGS@";

  outputs = { self, nixpkgs }:
    let
      at = file: [ { file = "${self}/${file}"; value = null; } ];
      opt = file: value: { _type = "option"; isDefined = true; inherit value; definitionsWithLocations = at file; };
      unset = { _type = "option"; isDefined = false; definitionsWithLocations = [ ]; };
      key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOBX8vp1Ny+xKrNGv3JcWg4MuA+W/TXJMq3HO5fPAkmn PLACEHOLDER-replace-with-a-real-admin-key";
      tailscale = { type = "derivation"; pname = "tailscale"; name = "tailscale-1.82.5"; };
      users = {
        root = { enable = true; openssh.authorizedKeys = { keys = [ ]; keyFiles = [ ]; }; };
        ops = { enable = true; isNormalUser = true; extraGroups = [ "wheel" ]; openssh.authorizedKeys = { keys = [ key ]; keyFiles = [ ]; }; _module = { args = { }; }; };
        gone = { enable = false; openssh.authorizedKeys = { keys = [ key ]; keyFiles = [ ]; }; };
      };
      config = {
        users.users = users;
        networking.firewall.trustedInterfaces = [ "lo" ];
      };
    in
    {
      nixosConfigurations.h = {
        inherit config;
        options = {
          networking.hostName = opt "hosts/h/default.nix" "h";
          networking.domain = unset;
          networking.firewall.interfaces = opt "modules/sourceos.nix" { tailscale0 = { allowedTCPPorts = [ 9100 ]; allowedUDPPorts = [ ]; }; };
          networking.firewall.trustedInterfaces = opt "modules/sourceos.nix" config.networking.firewall.trustedInterfaces;
          services.openssh.enable = opt "modules/profiles/hardened.nix" true;
          services.tailscale.interfaceName = opt "modules/sourceos.nix" "tailscale0";
          sourceos.mesh.package = opt "hosts/h/default.nix" tailscale;
          sourceos.admins = opt "hosts/h/default.nix" [ { name = "ops"; sshKeys = [ key ]; _module = { }; } ];
          sourceos.consoleOnly = opt "modules/sourceos.nix" false;
          users.users = opt "modules/sourceos.nix" users;
        };
      };
    };
}
