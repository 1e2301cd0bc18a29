# The lib functions flake.nix, images/ and tests/ call, from builtins only.
rec {
  genAttrs = names: f: builtins.listToAttrs (map (n: { name = n; value = f n; }) names);
  hasSuffix = suffix: s:
    let ls = builtins.stringLength s; lx = builtins.stringLength suffix;
    in lx <= ls && builtins.substring (ls - lx) lx s == suffix;
  removeSuffix = suffix: s:
    if hasSuffix suffix s then builtins.substring 0 (builtins.stringLength s - builtins.stringLength suffix) s else s;
  foldl' = builtins.foldl';
  nameValuePair = name: value: { inherit name value; };
  mapAttrs = builtins.mapAttrs;
  mapAttrs' = f: set: builtins.listToAttrs (map (n: f n set.${n}) (builtins.attrNames set));
  filterAttrs = pred: set:
    builtins.listToAttrs (builtins.concatMap (n: if pred n set.${n} then [ (nameValuePair n set.${n}) ] else [ ]) (builtins.attrNames set));
  getAttrs = names: set: genAttrs names (n: set.${n});
  optionalAttrs = cond: set: if cond then set else { };
  hasPrefix = prefix: s: builtins.substring 0 (builtins.stringLength prefix) s == prefix;
  removePrefix = prefix: s:
    if hasPrefix prefix s then builtins.substring (builtins.stringLength prefix) (builtins.stringLength s) s else s;
  replaceStrings = builtins.replaceStrings;
  importJSON = path: builtins.fromJSON (builtins.readFile path);
  optional = cond: x: if cond then [ x ] else [ ];
  optionals = cond: xs: if cond then xs else [ ];
  concatMap = builtins.concatMap;
  concatStringsSep = builtins.concatStringsSep;
  concatMapStrings = f: list: builtins.concatStringsSep "" (map f list);
  assertMsg = pred: msg: pred || builtins.throw msg;
  listToAttrs = builtins.listToAttrs;
  mkForce = v: v;
  mkIf = _: v: v;
  mkDefault = v: v;
  mkOverride = _: v: v;
  mkImageMediaOverride = v: v;
}
