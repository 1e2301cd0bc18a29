# Offline stand-in for the SourceOS flake, used by the test suite.
#
# It has the real flake's output names but builds everything with /bin/sh, so
# the whole pipeline (build, sign, cache push, substitute) runs with real Nix
# and no network. Nothing here is a NixOS image: the "ISO" is a few KiB of
# bytes in the place where the real one lives.
{
  description = "SourceOS offline test fixture";

  outputs = { self }:
    let
      system = "x86_64-linux";
      sh = "/bin/sh";

      # mk: a derivation whose builder is a shell script.
      mk = name: script: env: derivation ({
        inherit name system;
        builder = sh;
        args = [ "-c" script ];
        PATH = "/usr/bin:/bin";
      } // env);

      editions = [ "desktop" "server" "edge" ];

      # A small closure of store paths referencing each other:
      # system -> etc -> sw -> lib, system -> kernel.
      lib = edition: mk "sourceos-${edition}-lib-1.0" ''
        mkdir -p $out/lib
        i=0; while [ $i -lt 64 ]; do echo "lib ${edition} line $i" >> $out/lib/libsourceos.so; i=$((i+1)); done
      '' { };
      sw = edition: mk "sourceos-${edition}-sw-2.1" ''
        mkdir -p $out/bin
        printf '#!/bin/sh\n# links %s\necho hello from ${edition}\n' "$lib" > $out/bin/hello
        chmod +x $out/bin/hello
        ln -s hello $out/bin/hi
      '' { lib = lib edition; };
      etc = edition: mk "sourceos-${edition}-etc" ''
        mkdir -p $out/etc
        echo "PATH=$sw/bin" > $out/etc/profile
        echo "ID=sourceos" > $out/etc/os-release
      '' { sw = sw edition; };
      kernel = mk "linux-6.6.1" ''
        mkdir -p $out
        echo "fake bzImage" > $out/bzImage
      '' { };
      initrd = edition: mk "initrd-${edition}" ''
        mkdir -p $out
        echo "fake initrd of $toplevel" > $out/initrd
      '' { toplevel = systemOf edition; };
      systemOf = edition: mk "nixos-system-sourceos-${edition}-25.05" ''
        mkdir -p $out
        ln -s $etc/etc $out/etc
        ln -s $kernel/bzImage $out/kernel
        echo "${edition}" > $out/edition
      '' { etc = etc edition; inherit kernel; };

      # The ISO's bytes do not reference the system (as with a real squashfs
      # image); only the directory layout matters: iso/<name>.iso.
      iso = edition: mk "sourceos-${edition}-x86_64.iso" ''
        mkdir -p $out/iso
        i=0; while [ $i -lt 256 ]; do echo "sourceos ${edition} iso sector $i" >> $out/iso/sourceos-${edition}-x86_64.iso; i=$((i+1)); done
      '' { };

      # Netboot: kernel, initrd and an iPXE script, as nixpkgs' netboot
      # module lays them out.
      netboot = edition: mk "sourceos-${edition}-netboot" ''
        mkdir -p $out
        cp $kernel/bzImage $out/bzImage
        cp $initrd/initrd $out/initrd
        # nixpkgs' netboot.nix script, argument for argument: the kernel's
        # EFI stub loads the initrd named by initrd= when iPXE cannot.
        {
          echo '#!ipxe'
          echo '# Use the cmdline variable to allow the user to specify custom kernel params'
          echo '# when chainloading this script from other iPXE scripts like netboot.xyz'
          echo "kernel bzImage init=$toplevel/init initrd=initrd console=ttyS0 loglevel=4 \''${cmdline}"
          echo 'initrd initrd'
          echo 'boot'
        } > $out/netboot.ipxe
      '' { inherit kernel; initrd = initrd edition; toplevel = systemOf edition; };

      # A derivation that fails, for the failure-path tests.
      broken = mk "sourceos-broken" ''
        echo "building the broken thing"; echo "error: this derivation fails on purpose" >&2; exit 1
      '' { };

      # Custom images for build:custom: the content depends on the spec (data
      # only), and on the module snippet when there is one.
      custom = spec: snippet:
        let
          e = spec.edition;
          config = mk "sourceos-custom-config" ''
            mkdir -p $out
            printf '%s\n' "$specJSON" > $out/spec.json
            printf '%s\n' "$snippetJSON" > $out/snippet.json
          '' { specJSON = builtins.toJSON spec; snippetJSON = builtins.toJSON snippet; };
          toplevel = mk "nixos-system-${spec.hostname}-25.05" ''
            mkdir -p $out
            ln -s $base $out/base
            ln -s $config $out/config
          '' { base = systemOf e; inherit config; };
          image = mk "sourceos-${e}-x86_64.iso" ''
            mkdir -p $out/iso
            i=0; while [ $i -lt 64 ]; do echo "sourceos custom ${spec.hostname} sector $i" >> $out/iso/sourceos-${e}-x86_64.iso; i=$((i+1)); done
          '' { };
        in
        {
          "sourceos-${e}-iso" = image;
          "sourceos-${e}-system" = toplevel;
        };

      # Stand-ins for the NixOS tests of tests/ (boottest): each prints a
      # test driver's kind of log; the broken one fails with the error as
      # the last lines of its log, after enough lines to push the start out
      # of any tail.
      driverLog = name: ''
        echo "start all VLans"
        echo "${name}: starting vm"
        i=0; while [ $i -lt 60 ]; do echo "${name}: [  $i.000000] systemd[1]: booting step $i"; i=$((i+1)); done
      '';
      passingTest = name: mk "vm-test-run-${name}" ''
        ${driverLog name}
        echo "${name}: waiting for unit multi-user.target"
        echo "(finished: waiting for unit multi-user.target, in 1.00 seconds)"
        echo "test script finished in 1.00s"
        mkdir -p $out && echo passed > $out/result
      '' { };
      failingTest = name: mk "vm-test-run-${name}" ''
        ${driverLog name}
        echo "${name}: must succeed: test -e /mnt/boot/loader/entries/x.conf"
        echo "Test \"${name}\" failed with error: \"command \`test -e /mnt/boot/loader/entries/x.conf\` failed (exit code 1)\"" >&2
        exit 1
      '' { };

      perEdition = f: builtins.listToAttrs (map (e: { name = "sourceos-${e}-${f.suffix}"; value = f.drv e; }) editions);
    in
    {
      lib.customImages = custom;

      packages.${system} =
        perEdition { suffix = "iso"; drv = iso; }
        // perEdition { suffix = "system"; drv = systemOf; }
        // perEdition { suffix = "netboot"; drv = netboot; }
        // { sourceos-broken-iso = broken; sourceos-broken-system = broken; };

      # The shape of the real flake's NixOS tests: boot tests are checks,
      # install tests live under legacyPackages.<system>.tests.
      checks.${system}.edition-server-boot = passingTest "edition-server-boot";
      legacyPackages.${system}.tests = {
        edition-server-install = passingTest "edition-server-install";
        edition-broken-install = failingTest "edition-broken-install";
      };

      # Rebuild check (SOURCEOS_REBUILD_CHECK): a derivation that builds to
      # the same bytes every time, and one that does not (it writes random
      # bytes), for `nix build --rebuild`.
      rebuildFixtures.${system} = {
        deterministic = mk "sourceos-rebuild-deterministic" ''
          mkdir -p $out/iso
          echo "the same bytes every time" > $out/iso/image.iso
        '' { };
        nondeterministic = mk "sourceos-rebuild-nondeterministic" ''
          mkdir -p $out/iso
          head -c 32 /dev/urandom | od -An -tx1 > $out/iso/image.iso
        '' { };
      };
    };
}
