# Benchmark closures for `mage bench:cache`, built offline with /bin/sh.
#
# default: 250 paths of about 1 MB each (text that compresses well mixed with
# base64 of random bytes, which compresses to about 3/4), linked into a
# tree of references, plus one 24 MB incompressible file: about 270 MB of
# NAR (BenchmarkPushCold, BenchmarkPushWarm).
#
# small, small-b … small-f: 2,001 small paths (about 3 KB of NAR each) of
# reference depth 41: 40 levels of 50 paths (the outputs of one
# derivation per level), each path referring to two of the level below,
# and a root referring to the top level. Six of them (seeds a to f) make a
# cache of 24,000 objects for the GC benchmark.
#
# large: 40 paths of 10 MiB of random bytes (incompressible) and a root:
# about 420 MB of NAR.
#
# The random bytes make every build different, which does not matter: the
# benchmark builds once and then only reads the store.
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

      # small: levels of width outputs, each output referring to outputs i
      # and i+1 of the level below. Levels are bound once per seed (the
      # list is lazy), so evaluation stays linear.
      width = 50;
      depth = 40;
      names = builtins.genList (i: "o${toString i}") width;
      levelsOf = seed: builtins.genList (k: level seed k) depth;
      levels = builtins.listToAttrs (map (seed: { name = seed; value = levelsOf seed; }) seeds);
      level = seed: k: derivation {
        name = "lb-${seed}-level-${toString k}";
        inherit system;
        builder = "/bin/sh";
        PATH = "/usr/bin:/bin";
        outputs = names;
        prev = if k == 0 then "" else builtins.concatStringsSep " " (map (n: (builtins.elemAt levels.${seed} (k - 1)).${n}) names);
        args = [ "-c" ''
          set -- $prev
          i=0
          for o in $outputs; do
            eval out=\$$o
            mkdir -p $out
            j=$(( (i + 1) % ${toString width} ))
            eval a=\''${$((i + 1))}
            eval b=\''${$((j + 1))}
            printf 'seed ${seed} level ${toString k} output %s\nrefs %s %s\n' $i "$a" "$b" > $out/info
            yes "sourceos link bench ${seed} ${toString k} $i" | head -c 1500 > $out/text
            head -c 600 /dev/urandom | base64 > $out/noise
            i=$((i + 1))
          done
        '' ];
      };
      seeds = [ "a" "b" "c" "d" "e" "f" ];
      small = seed: mk "lb-${seed}-root" ''
        mkdir -p $out
        for p in $top; do echo $p >> $out/paths; done
      '' { top = map (n: (builtins.elemAt levels.${seed} (depth - 1)).${n}) names; };

      # large: one derivation with 40 outputs of 10 MiB each.
      bigNames = builtins.genList (i: "b${toString i}") 40;
      big = derivation {
        name = "bench-large";
        inherit system;
        builder = "/bin/sh";
        PATH = "/usr/bin:/bin";
        outputs = bigNames;
        args = [ "-c" ''
          for o in $outputs; do
            eval out=\$$o
            mkdir -p $out
            head -c 10485760 /dev/urandom > $out/random.bin
          done
        '' ];
      };
      large = mk "bench-large-root" ''
        mkdir -p $out
        for p in $parts; do echo $p >> $out/paths; done
      '' { parts = map (n: big.${n}) bigNames; };

      root = mk "bench-root" ''
        mkdir -p $out
        for p in $paths; do echo $p >> $out/paths; done
      '' { paths = builtins.attrValues nodes ++ [ random ]; };
    in
    {
      packages.${system} = {
        default = root;
        small = small "a";
        large = large;
      } // builtins.listToAttrs (map (seed: { name = "small-${seed}"; value = small seed; }) seeds);
    };
}
