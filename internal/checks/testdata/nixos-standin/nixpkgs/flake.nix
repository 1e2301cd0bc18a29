# A stand-in for nixpkgs with the lib functions nixos-eval.nix calls,
# from builtins only.
{
  outputs = { self }: {
    lib = rec {
      hasPrefix = p: s: builtins.substring 0 (builtins.stringLength p) s == p;
      removePrefix = p: s:
        if hasPrefix p s then builtins.substring (builtins.stringLength p) (builtins.stringLength s) s else s;
      isDerivation = v: builtins.isAttrs v && (v.type or null) == "derivation";
      getName = v: v.pname or v.name;
      mapAttrs = builtins.mapAttrs;
      last = xs: builtins.elemAt xs (builtins.length xs - 1);
      isOption = v: builtins.isAttrs v && (v._type or null) == "option";
      hasAttrByPath = path: v:
        if path == [ ] then true
        else builtins.isAttrs v && v ? ${builtins.head path} && hasAttrByPath (builtins.tail path) v.${builtins.head path};
      getAttrFromPath = path: v: if path == [ ] then v else getAttrFromPath (builtins.tail path) v.${builtins.head path};
      concatMap = builtins.concatMap;
    };
  };
}
