# Benchmark closure for `mage bench:cache`: built offline with /bin/sh.
#
# 250 paths of about 1 MB each (text that compresses well mixed with
# base64 of random bytes, which compresses to about 3/4), linked into a
# tree of references, plus one 24 MB incompressible file: about 270 MB of
# NAR. The random bytes make every build different, which does not matter:
# the benchmark builds once and then only reads the store.
{
  description = "SourceOS nixcache benchmark closure";

  outputs = { self }:
    let
      system = "x86_64-linux";
      mk = name: script: env: derivation ({
        inherit name system;
        builder = "/bin/sh";
        args = [ "-c" script ];
        PATH = "/usr/bin:/bin";
      } // env);

      n = 250;
      # path i references path i/2: a binary tree rooted at path 1.
      node = i: mk "bench-node-${toString i}" ''
        mkdir -p $out/share
        yes "sourceos benchmark path ${toString i}: some compressible text $dep" | head -c 600000 > $out/share/text
        head -c 300000 /dev/urandom | base64 > $out/share/blob.b64
        echo "$dep" > $out/share/dep
      '' (if i > 1 then { dep = nodes.${toString (i / 2)}; } else { dep = ""; });
      nodes = builtins.listToAttrs (map (i: { name = toString i; value = node i; }) (builtins.genList (i: i + 1) n));

      random = mk "bench-incompressible" ''
        mkdir -p $out
        head -c 25165824 /dev/urandom > $out/random.bin
      '' { };

      root = mk "bench-root" ''
        mkdir -p $out
        for p in $paths; do echo $p >> $out/paths; done
      '' { paths = builtins.attrValues nodes ++ [ random ]; };
    in
    {
      packages.${system}.default = root;
    };
}
