# Evaluates one host module, and the modules of the repository it imports,
# against stub arguments: no nixpkgs, no module system. The stub `lib` wraps
# values the way the module system does (mkOverride -> { _type = "override";
# priority; content; }, mkIf, mkMerge, mkOrder), and the definitions of each
# contract path are then unwrapped and resolved by priority, as
# lib.modules would. `pkgs` holds stub packages named in the request;
# `config` exposes the resolved contract paths only.
#
# request (JSON): { root, file, name, packages: [ str ], paths: [ [ str ] ] }
{ request }:
let
  req = builtins.fromJSON request;
  inherit (builtins) isAttrs isFunction isPath isString isList head tail filter
    concatMap map foldl' listToAttrs functionArgs mapAttrs removeAttrs
    stringLength substring genericClosure unsafeGetAttrPos typeOf elemAt length;

  root = req.root;
  rootPrefix = root + "/";
  isLocal = s: substring 0 (stringLength rootPrefix) s == rootPrefix;
  relative = s: if isLocal s then substring (stringLength rootPrefix) (stringLength s) s else s;

  override = priority: content: { _type = "override"; inherit priority content; };
  order = priority: content: { _type = "order"; inherit priority content; };

  stubLib = builtins // {
    mkOverride = override;
    mkOptionDefault = override 1500;
    mkDefault = override 1000;
    mkImageMediaOverride = override 60;
    mkForce = override 50;
    mkVMOverride = override 10;
    mkIf = condition: content: { _type = "if"; inherit condition content; };
    mkMerge = contents: { _type = "merge"; inherit contents; };
    mkOrder = order;
    mkBefore = order 500;
    mkAfter = order 1500;
    optional = cond: x: if cond then [ x ] else [ ];
    optionals = cond: xs: if cond then xs else [ ];
    optionalString = cond: s: if cond then s else "";
    optionalAttrs = cond: as: if cond then as else { };
    genAttrs = names: f: listToAttrs (map (n: { name = n; value = f n; }) names);
    id = x: x;
  };

  stubPackage = name: {
    type = "derivation";
    inherit name;
    pname = name;
    outPath = "/nix/store/00000000000000000000000000000000-" + name;
    _stubPackage = name;
  };
  pkgs = listToAttrs (map (n: { name = n; value = stubPackage n; }) req.packages);

  args = {
    lib = stubLib;
    inherit pkgs config;
    options = { };
    modulesPath = "/nixpkgs-stub/nixos/modules";
    specialArgs = { };
    name = req.name;
  };
  argsFor = f: mapAttrs
    (n: _: args.${n} or (throw "module argument `${n}` has no stub in the module-level evaluation"))
    (functionArgs f);

  # load: a module value (path, function or attribute set) as
  # { key, file, config, imports }, in the shapes lib.modules accepts.
  load = key: file: value:
    let
      raw = if isPath value || isString value then import value else value;
      m = if isFunction raw then raw (argsFor raw) else raw;
      structured = m ? config || m ? options;
    in
    {
      inherit key file;
      config =
        if structured then m.config or { }
        else removeAttrs m [ "_class" "_file" "key" "disabledModules" "imports" "require" "freeformType" ];
      imports = m.imports or [ ];
    };

  # children: the imports of a module that belong to this evaluation: local
  # files and inline modules. Others (nixpkgs' own modules) are only named.
  children = mod:
    let
      indexed = builtins.genList (i: { i = i; v = elemAt mod.imports i; }) (length mod.imports);
      one = e:
        if isPath e.v || isString e.v then
          (if isLocal (toString e.v) then [ (load (toString e.v) (toString e.v) e.v) ] else [ ])
        else [ (load "${mod.key}#${toString e.i}" mod.file e.v) ];
    in
    concatMap one indexed;

  hostFile = req.file;
  modules = genericClosure {
    startSet = [ (load hostFile hostFile (/. + hostFile)) ];
    operator = children;
  };

  importedFiles = filter (k: k != hostFile) (map (m: m.key) (filter (m: m.key == m.file) modules));
  externalImports = concatMap
    (m: map (v: toString v) (filter (v: (isPath v || isString v) && !(isLocal (toString v))) m.imports))
    modules;

  # defsAt: the definitions of `path` inside a module's config value, with
  # the override priority that applies and where the innermost attribute is.
  defsAt = file: prio: path: v:
    if isAttrs v && v ? _type && v._type == "if" then
      (if v.condition then defsAt file prio path v.content else [ ])
    else if isAttrs v && v ? _type && v._type == "merge" then
      concatMap (defsAt file prio path) v.contents
    else if isAttrs v && v ? _type && v._type == "override" then
      defsAt file (if prio == null then v.priority else prio) path v.content
    else if isAttrs v && v ? _type && v._type == "order" then
      defsAt file prio path v.content
    else if path == [ ] then
      [ { inherit file; priority = if prio == null then 100 else prio; value = v; } ]
    else if isAttrs v && v ? ${head path} then
      map (d: { pos = unsafeGetAttrPos (head path) v; } // d) (defsAt file prio (tail path) v.${head path})
    else [ ];

  # normalize: a value as JSON can carry it; packages by name.
  normalize = v:
    if isAttrs v && (v.type or null) == "derivation" then { package = v._stubPackage or v.pname or v.name; }
    else if isAttrs v then mapAttrs (_: normalize) (removeAttrs v [ "_type" ])
    else if isList v then map normalize v
    else if isPath v then toString v
    else if isFunction v then { unrepresentable = "lambda"; }
    else v;

  resolve = path:
    let
      defs = concatMap (m: defsAt m.file null path m.config) modules;
      best = foldl' (a: d: if a == null || d.priority < a.priority then d else a) null defs;
      winners = filter (d: d.priority == best.priority) defs;
      value = normalize best.value;
      pos = best.pos or null;
    in
    if defs == [ ] then { defined = false; }
    else {
      defined = true;
      inherit value;
      priority = best.priority;
      file = relative (if pos != null then pos.file else best.file);
      line = if pos != null then pos.line else 0;
      conflict = builtins.any (d: normalize d.value != value) winners;
    };

  resolved = map (p: { path = p; } // resolve p) req.paths;

  # config: the contract paths, resolved, for modules that read them.
  setPath = path: value: if path == [ ] then value else { ${head path} = setPath (tail path) value; };
  merge = a: b: a // mapAttrs (n: v: if isAttrs v && a ? ${n} && isAttrs a.${n} then merge a.${n} v else v) b;
  config = foldl'
    (acc: p: merge acc (setPath p (let r = resolve p; in
      if r.defined then r.value else throw "config.${builtins.concatStringsSep "." p} is not defined by this host's modules")))
    { } req.paths;
in
{
  imports = map relative importedFiles;
  external = externalImports;
  facts = resolved;
}
