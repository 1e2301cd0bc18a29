# Offline stand-in for editions/custom/flake.nix: the fixed flake of a custom
# build. It reads the validated spec as data and never interpolates it into
# code; the `sourceos` input is overridden at build time.
{
  description = "SourceOS custom build (offline fixture)";

  inputs.sourceos.url = "path:/nonexistent/overridden-by-build-custom";

  outputs = { self, sourceos }:
    let
      spec = builtins.fromJSON (builtins.readFile ./spec.json);
      edition = builtins.fromJSON (builtins.readFile ./edition.json);
      snippet = if spec.hasSnippet then import ./snippet.nix { config = { }; pkgs = { }; lib = { }; } else { };
    in
    {
      packages.x86_64-linux = sourceos.lib.customImages (spec // { editionModule = edition.module; }) snippet;
    };
}
