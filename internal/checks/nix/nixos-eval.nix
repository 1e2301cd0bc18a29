# Evaluates fact paths in the flake's real NixOS configurations (needs
# the flake's locked inputs in the Nix store). Values come out in the same
# shape as module-eval.nix gives them: packages by name, definitions
# located by the option's definitionsWithLocations. A path that goes on
# past an option (into an attrsOf or submodule option's value, e.g.
# users.users.<name>.isNormalUser) is read from the option's value.
#
# request (JSON): { flake, name, paths: [ [ str ] ] }
{ request }:
let
  req = builtins.fromJSON request;
  flake = builtins.getFlake req.flake;
  lib = flake.inputs.nixpkgs.lib;
  rootPrefix = toString flake.outPath + "/";
  relative = s: lib.removePrefix rootPrefix (toString s);

  normalize = v:
    if lib.isDerivation v then { package = lib.getName v; }
    else if builtins.isAttrs v then lib.mapAttrs (_: normalize) (removeAttrs v [ "_module" ])
    else if builtins.isList v then map normalize v
    else if builtins.isPath v then toString v
    else if builtins.isFunction v then { unrepresentable = "lambda"; }
    else v;

  # where: the last definition of an option in this repository's files.
  where = opt:
    let
      defs = builtins.filter (d: lib.hasPrefix rootPrefix (toString d.file)) (opt.definitionsWithLocations or [ ]);
    in
    if defs == [ ] then "" else relative (lib.last defs).file;

  # option: the option a path names or goes through, and the rest of the path.
  option = opts: path:
    if lib.isOption opts then { opt = opts; rest = path; }
    else if path == [ ] || !(builtins.isAttrs opts) || !(opts ? ${builtins.head path}) then null
    else option opts.${builtins.head path} (builtins.tail path);

  lookup = path:
    let o = option nixos.options path; in
    if o == null || !o.opt.isDefined then { defined = false; }
    else if o.rest == [ ] then { defined = true; value = o.opt.value; file = where o.opt; }
    else if lib.hasAttrByPath o.rest o.opt.value then { defined = true; value = lib.getAttrFromPath o.rest o.opt.value; file = where o.opt; }
    else { defined = false; };

  fact = path:
    let l = lookup path; in
    { inherit path; }
    // (if l.defined then {
      defined = true;
      value = normalize l.value;
      inherit (l) file;
      line = 0;
      conflict = false;
    } else { defined = false; });

  valueOr = d: path: let l = lookup path; in if l.defined then normalize l.value else d;

  nixos = flake.nixosConfigurations.${req.name};
  cfg = nixos.config;

  access = {
    consoleOnly = valueOr null [ "sourceos" "consoleOnly" ];
    sshd = valueOr null [ "services" "openssh" "enable" ];
    admins = valueOr null [ "sourceos" "admins" ];
    users = lib.concatMap
      (n:
        let
          u = cfg.users.users.${n};
          keys = u.openssh.authorizedKeys.keys;
          keyFiles = builtins.length u.openssh.authorizedKeys.keyFiles;
        in
        if (u.enable or true) && (keys != [ ] || keyFiles > 0) then [ { name = n; inherit keys keyFiles; } ] else [ ])
      (builtins.attrNames cfg.users.users);
    trustedInterfaces = cfg.networking.firewall.trustedInterfaces;
    meshInterface = valueOr "tailscale0" [ "services" "tailscale" "interfaceName" ];
  };
in
{
  facts = map fact req.paths;
  inherit access;
}
