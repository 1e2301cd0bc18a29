# Evaluates one host module, the repository modules it imports and those
# the flake adds to every host, against stand-ins: no nixpkgs, no module
# system. The stand-in `lib` wraps values the way the module system does
# (mkOverride -> { _type = "override"; priority; content; }, mkIf, mkMerge,
# mkOrder) and declares options as records with their defaults; `pkgs`
# holds stub packages named in the request; extra module arguments and
# options of modules that cannot be loaded come from the host facts file.
#
# Definitions are resolved as lib.modules does, without types: a
# condition is only evaluated for a definition of the path being resolved
# (mkIf is pushed down), attribute sets merge attribute by attribute, and
# at each leaf the highest priority wins (option defaults are priority
# 1500), lists of equal priority concatenate, other values of equal
# priority that differ are a conflict. `config` is every defined path,
# resolved lazily.
#
# request (JSON): { root, file, name, system, packages: [ str ],
#   paths: [ [ str ] ], modules: [ str ], args: { name: standIn },
#   stubs: [ { path, kind, default | attrsOf } ], factsFile }
{ request }:
let
  req = builtins.fromJSON request;
  inherit (builtins) isAttrs isFunction isPath isString isList head tail filter
    concatMap map foldl' listToAttrs functionArgs mapAttrs removeAttrs attrNames
    stringLength substring genericClosure unsafeGetAttrPos elemAt length
    concatStringsSep replaceStrings all any;

  root = req.root;
  rootPrefix = root + "/";
  isLocal = s: substring 0 (stringLength rootPrefix) s == rootPrefix;
  relative = s: if isLocal s then substring (stringLength rootPrefix) (stringLength s) s else s;
  dotted = concatStringsSep ".";
  uniqueNames = xs: attrNames (listToAttrs (map (n: { name = n; value = null; }) xs));
  setPath = path: value: if path == [ ] then value else { ${head path} = setPath (tail path) value; };

  override = priority: content: { _type = "override"; inherit priority content; };
  order = priority: content: { _type = "order"; inherit priority content; };
  isType = t: v: isAttrs v && (v._type or null) == t;

  # Option declarations keep what this evaluation uses: the default.
  option = attrs: attrs // { _type = "option"; };
  isOption = isType "option";
  stubType = name: { _type = "stubType"; inherit name; };
  types =
    let
      t = stubType;
      f1 = n: _: t n;
      f2 = n: _: _: t n;
    in
    {
      str = t "str"; bool = t "bool"; int = t "int"; float = t "float"; number = t "number";
      port = t "port"; path = t "path"; package = t "package"; anything = t "anything";
      attrs = t "attrs"; lines = t "lines"; raw = t "raw"; unspecified = t "unspecified";
      nonEmptyStr = t "nonEmptyStr"; singleLineStr = t "singleLineStr"; commas = t "commas";
      envVar = t "envVar"; shellPackage = t "shellPackage"; pathInStore = t "pathInStore";
      ints = { unsigned = t "unsigned"; positive = t "positive"; u8 = t "u8"; u16 = t "u16";
        u32 = t "u32"; s8 = t "s8"; s16 = t "s16"; s32 = t "s32"; between = f2 "between"; };
      enum = f1 "enum"; listOf = f1 "listOf"; nonEmptyListOf = f1 "nonEmptyListOf";
      attrsOf = f1 "attrsOf"; lazyAttrsOf = f1 "lazyAttrsOf"; nullOr = f1 "nullOr";
      submodule = f1 "submodule"; submoduleWith = f1 "submoduleWith"; oneOf = f1 "oneOf";
      strMatching = f1 "strMatching"; separatedString = f1 "separatedString";
      uniq = f1 "uniq"; functionTo = f1 "functionTo"; passwdEntry = f1 "passwdEntry";
      either = f2 "either"; addCheck = f2 "addCheck"; coercedTo = _: f2 "coercedTo";
    };
  packageOption = pkgs': name: extra:
    let d = extra.default or name; in
    option {
      default =
        if d == null then null
        else if isList d then stubPackage (concatStringsSep "." d)
        else pkgs'.${d} or (stubPackage d);
    };

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
    mkOption = option;
    mkEnableOption = _: option { default = false; };
    mkPackageOption = packageOption;
    mkPackageOptionMD = packageOption;
    mkRenamedOptionModule = _: _: { };
    mkRemovedOptionModule = _: _: { };
    mkAliasOptionModule = _: _: { };
    inherit types;
    literalExpression = text: { _type = "literalExpression"; inherit text; };
    literalMD = text: { _type = "literalMD"; inherit text; };
    mdDoc = s: s;
    optional = cond: x: if cond then [ x ] else [ ];
    optionals = cond: xs: if cond then xs else [ ];
    optionalString = cond: s: if cond then s else "";
    optionalAttrs = cond: as: if cond then as else { };
    genAttrs = names: f: listToAttrs (map (n: { name = n; value = f n; }) names);
    nameValuePair = name: value: { inherit name value; };
    mapAttrsToList = f: as: map (n: f n as.${n}) (attrNames as);
    mapAttrs' = f: as: listToAttrs (map (n: f n as.${n}) (attrNames as));
    filterAttrs = pred: as: listToAttrs (concatMap (n: if pred n as.${n} then [ { name = n; value = as.${n}; } ] else [ ]) (attrNames as));
    concatMapStrings = f: xs: concatStringsSep "" (map f xs);
    concatMapStringsSep = sep: f: xs: concatStringsSep sep (map f xs);
    hasPrefix = p: s: substring 0 (stringLength p) s == p;
    hasSuffix = p: s: let n = stringLength s; m = stringLength p; in n >= m && substring (n - m) m s == p;
    importJSON = file: builtins.fromJSON (builtins.readFile file);
    id = x: x;
  };

  stubPackage = name: {
    type = "derivation";
    inherit name;
    pname = name;
    outPath = "/nix/store/00000000000000000000000000000000-" + name;
    _stubPackage = name;
  };
  stubPkgs = listToAttrs (map (n: { name = n; value = stubPackage n; }) req.packages);
  pkgs = stubPkgs // {
    system = req.system;
    stdenv = (stubPkgs.stdenv or (stubPackage "stdenv")) // { hostPlatform = { system = req.system; }; };
  };

  # standIn: an extra module argument, as the host facts file declares it.
  standIn = name: s:
    if s.kind == "package" then stubPackage s.package
    else if s.kind == "value" then s.value
    else if s.kind == "attrs" then mapAttrs (n: standIn "${name}.${n}") s.attrs
    else throw "module argument `${name}` is a stub (moduleArgs in ${req.factsFile}): the module-level evaluation has no value for it";

  args = {
    lib = stubLib;
    inherit pkgs config;
    options = { };
    modulesPath = "/nixpkgs-stub/nixos/modules";
    specialArgs = { };
    name = req.name;
  } // mapAttrs standIn req.args;
  argsFor = f: mapAttrs
    (n: _: args.${n} or (throw "module argument `${n}` has no stand-in in the module-level evaluation (declare one in moduleArgs of ${req.factsFile})"))
    (functionArgs f);

  # load: a module value (path, function or attribute set) as
  # { key, file, config, options, imports }, in the shapes lib.modules accepts.
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
        else removeAttrs m [ "_class" "_file" "key" "disabledModules" "imports" "require" "freeformType" "meta" ];
      options = if structured then m.options or { } else { };
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
  loadFile = f: load f f (/. + f);
  hostClosure = genericClosure { startSet = [ (loadFile hostFile) ]; operator = children; };
  modules = genericClosure {
    startSet = [ (loadFile hostFile) ] ++ map loadFile req.modules;
    operator = children;
  };

  importedFiles = filter (k: k != hostFile) (map (m: m.key) (filter (m: m.key == m.file) hostClosure));
  externalImports = concatMap
    (m: map (v: toString v) (filter (v: (isPath v || isString v) && !(isLocal (toString v))) m.imports))
    hostClosure;

  # Option defaults are definitions at priority 1500, located where the
  # option is declared.
  optionDefaults = opts: listToAttrs (concatMap
    (n:
      let o = opts.${n}; in
      if isOption o then
        (if o ? default then [ { name = n; value = override 1500 o.default // { pos = unsafeGetAttrPos n opts; }; } ] else [ ])
      else if isAttrs o && !(o ? _type) then [ { name = n; value = optionDefaults o; } ]
      else [ ])
    (attrNames opts));
  optionModules = concatMap
    (m: if m.options == { } then [ ] else [ { key = m.key + "#options"; inherit (m) file; config = optionDefaults m.options; } ])
    modules;

  # Stub options (host facts file): a default, or an attribute set whose
  # entries (named by the other modules' definitions) start from the given
  # attributes, "{name}" replaced by the entry's name.
  subst = n: v:
    if isString v then replaceStrings [ "{name}" ] [ n ] v
    else if isList v then map (subst n) v
    else if isAttrs v then mapAttrs (_: subst n) v
    else v;
  realModules = modules ++ optionModules;
  stubModules = map
    (s: {
      key = "stubOptions:" + dotted s.path;
      file = req.factsFile;
      unlocated = true;
      config = setPath s.path (override 1500 (
        if s.kind == "default" then s.default
        else listToAttrs (map (n: { name = n; value = subst n s.attrsOf; }) (namesIn realModules s.path))));
    })
    req.stubs;
  allModules = realModules ++ stubModules;

  # rawAt: the values defined at `path`, no condition evaluated (the shape
  # of the tree, as lib.modules knows it from pushing properties down).
  rawAt = path: v:
    if isType "if" v || isType "override" v || isType "order" v then rawAt path v.content
    else if isType "merge" v then concatMap (rawAt path) v.contents
    else if path == [ ] then [ v ]
    else if isAttrs v && v ? ${head path} then rawAt (tail path) v.${head path}
    else [ ];
  isDrv = v: isAttrs v && (v ? _stubPackage || (v ? outPath && (v.type or null) == "derivation"));
  isNode = raws: raws != [ ] && all (r: isAttrs r && !(isDrv r)) raws;
  namesIn = mods: path: uniqueNames (concatMap (r: if isAttrs r then attrNames r else [ ]) (concatMap (m: rawAt path m.config) mods));
  rawsOf = path: concatMap (m: rawAt path m.config) allModules;

  # defsAt: the definitions of `path` inside a module's config value, with
  # the override priority that applies and where the innermost attribute
  # is. A condition is evaluated only when its content defines the path.
  defsAt = file: prio: path: v:
    if isType "if" v then
      (let inner = defsAt file prio path v.content; in if inner == [ ] then [ ] else if v.condition then inner else [ ])
    else if isType "merge" v then
      concatMap (defsAt file prio path) v.contents
    else if isType "override" v then
      map (d: if v ? pos && v.pos != null && !(d ? pos) then d // { inherit (v) pos; } else d)
        (defsAt file (if prio == null then v.priority else prio) path v.content)
    else if isType "order" v then
      defsAt file prio path v.content
    else if path == [ ] then
      [ { inherit file; priority = if prio == null then 100 else prio; value = v; } ]
    else if isAttrs v && v ? ${head path} then
      map (d: { pos = unsafeGetAttrPos (head path) v; } // d) (defsAt file prio (tail path) v.${head path})
    else [ ];
  defsOf = path: concatMap
    (m: let defs = defsAt m.file null path m.config; in if m.unlocated or false then map (d: removeAttrs d [ "pos" ]) defs else defs)
    allModules;

  # normalize: a value as JSON can carry it; packages by name.
  normalize = v:
    if isDrv v then { package = v._stubPackage or v.pname or v.name; }
    else if isAttrs v then mapAttrs (_: normalize) (removeAttrs v [ "_type" ])
    else if isList v then map normalize v
    else if isPath v then toString v
    else if isFunction v then { unrepresentable = "lambda"; }
    else v;

  located = d:
    let pos = d.pos or null; in
    { file = relative (if pos != null then pos.file else d.file); line = if pos != null then pos.line else 0; };

  # leaf: a path resolved by priority.
  leaf = path:
    let
      defs = defsOf path;
      best = foldl' (a: d: if a == null || d.priority < a.priority then d else a) null defs;
      winners = filter (d: d.priority == best.priority) defs;
      lists = all (d: isList d.value) winners;
      raw = if lists then concatMap (d: d.value) winners else best.value;
    in
    if defs == [ ] then { defined = false; }
    else {
      defined = true;
      inherit raw;
      value = normalize raw;
      conflict = !lists && any (d: normalize d.value != normalize raw) winners;
    } // located best;

  # factAt: a fact path, attribute sets merged attribute by attribute.
  factAt = path:
    let raws = rawsOf path; in
    if isNode raws then
      let
        kids = concatMap (n: let r = factAt (path ++ [ n ]); in if r.defined then [ { name = n; value = r; } ] else [ ])
          (uniqueNames (concatMap attrNames raws));
        defs = defsOf path;
        first = (head kids).value;
        where = if defs != [ ] then located (head defs) else if kids != [ ] then { file = first.file or ""; line = first.line or 0; } else { };
      in
      if kids == [ ] && defs == [ ] then { defined = false; }
      else {
        defined = true;
        value = listToAttrs (map (k: { inherit (k) name; value = k.value.value; }) kids);
        conflict = any (k: k.value.conflict) kids;
      } // where
    else removeAttrs (leaf path) [ "raw" ];

  # config: every defined path, resolved when read.
  valueAt = path:
    let raws = rawsOf path; in
    if isNode raws then
      listToAttrs (map (n: { name = n; value = valueAt (path ++ [ n ]); }) (uniqueNames (concatMap attrNames raws)))
    else
      let r = leaf path; in
      if r.defined then r.raw
      else throw "config.${dotted path} is not defined by this host's modules (the module-level evaluation knows no defaults of modules it does not load: declare it in stubOptions of ${req.factsFile})";
  config = valueAt [ ];

  valueOr = d: path: let f = factAt path; in if f.defined then f.value else d;
  whereOf = path: let f = factAt path; in if f.defined then { inherit (f) file line; } else { file = ""; line = 0; };
  userPath = n: [ "users" "users" n "openssh" "authorizedKeys" ];

  access = {
    consoleOnly = valueOr null [ "sourceos" "consoleOnly" ];
    sshd = valueOr null [ "services" "openssh" "enable" ];
    admins = valueOr null [ "sourceos" "admins" ];
    users = concatMap
      (n:
        let
          keys = valueOr [ ] (userPath n ++ [ "keys" ]);
          keyFiles = length (valueOr [ ] (userPath n ++ [ "keyFiles" ]));
        in
        if keys != [ ] || keyFiles > 0 then [ { name = n; inherit keys keyFiles; } ] else [ ])
      (namesIn allModules [ "users" "users" ]);
    trustedInterfaces = valueOr [ ] [ "networking" "firewall" "trustedInterfaces" ];
    meshInterface = valueOr "tailscale0" [ "services" "tailscale" "interfaceName" ];
    where = {
      admins = whereOf [ "sourceos" "admins" ];
      trustedInterfaces = whereOf [ "networking" "firewall" "trustedInterfaces" ];
    };
  };
in
{
  imports = map relative importedFiles;
  external = externalImports;
  facts = map (p: { path = p; } // factAt p) req.paths;
  inherit access;
}
