# Evaluates contract paths in the flake's real NixOS configurations (needs
# the flake's nixpkgs input). Values come out in the same shape as
# module-eval.nix gives them: packages by name, definitions located by the
# option's definitionsWithLocations.
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
    else if builtins.isAttrs v then lib.mapAttrs (_: normalize) v
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

  fact = nixos: path:
    let
      opt = lib.attrByPath path null nixos.options;
      isOpt = opt != null && lib.isOption opt;
    in
    { inherit path; }
    // (if isOpt && opt.isDefined then {
      defined = true;
      value = normalize opt.value;
      file = where opt;
      line = 0;
      conflict = false;
    } else { defined = false; });

  nixos = flake.nixosConfigurations.${req.name};
in
{ facts = map (fact nixos) req.paths; }
