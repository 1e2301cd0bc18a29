# Builds for the push-while-building tests and benchmark, offline, with
# /bin/sh. The nonce file (rewritten by each test) makes every derivation
# new, so Nix really builds and runs its post-build hook.
#
#   a <- b <- c      c fails on purpose: a and b are built first.
#   a <- b <- ok     the same chain, succeeding.
#   chain            30 derivations in a chain, each 1 MiB of base64 of
#                    random bytes plus text: a build that takes a while,
#                    for the overhead of pushing while building.
#   chainfail        chain, then a derivation that fails.
#   busy             the same chain where each derivation also computes
#                    for about a third of a second (SHA-256 of 64 MB of
#                    zeros): a build whose steps do some work.
{
  description = "SourceOS nixcache watch fixture";

  outputs = { self }:
    let
      system = "x86_64-linux";
      nonce = builtins.readFile ./nonce;
      mk = name: script: env: derivation ({
        inherit name system nonce;
        builder = "/bin/sh";
        args = [ "-c" script ];
        PATH = "/usr/bin:/bin";
      } // env);

      a = mk "watch-a" ''
        mkdir -p $out
        echo "a $nonce" > $out/a
      '' { };
      b = mk "watch-b" ''
        mkdir -p $out
        echo "b uses $a" > $out/b
      '' { inherit a; };
      c = mk "watch-c" ''
        echo "c uses $b and fails on purpose" >&2
        exit 1
      '' { inherit b; };
      ok = mk "watch-ok" ''
        mkdir -p $out
        echo "ok uses $b" > $out/ok
      '' { inherit b; };

      link = busy: i: mk "watch-${if busy then "busy" else "chain"}-${toString i}" ''
        mkdir -p $out
        echo "link ${toString i} after $prev" > $out/prev
        ${if busy then "head -c 64000000 /dev/zero | sha256sum > $out/work" else ""}
        head -c 786432 /dev/urandom | base64 > $out/data
        i=0; while [ $i -lt 200 ]; do echo "chain ${toString i} line $i $nonce"; i=$((i+1)); done > $out/text
      '' { prev = if i == 0 then "" else (if busy then busyLinks else links).${toString (i - 1)}; };
      chainOf = busy: builtins.listToAttrs (builtins.genList (i: { name = toString i; value = link busy i; }) 30);
      links = chainOf false;
      busyLinks = chainOf true;
    in
    {
      packages.${system} = {
        inherit a b c ok;
        chain = links."29";
        busy = busyLinks."29";
        chainfail = mk "watch-chain-fail" ''
          echo "the end of the chain fails on purpose: $top" >&2
          exit 1
        '' { top = links."29"; };
      };
    };
}
