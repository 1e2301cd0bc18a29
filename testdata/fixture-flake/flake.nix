# Offline stand-in for the SourceOS flake, used by the test suite.
#
# It has the real flake's shape (its outputs are the instances of its own
# catalog.json, named as the catalog says) but builds everything with
# /bin/sh, so the whole pipeline (build, sign, cache push, substitute) runs
# with real Nix and no network. Nothing here is a NixOS image: the "ISO" is
# a few KiB of bytes in the place where the real one lives.
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

      catalog = builtins.fromJSON (builtins.readFile ./catalog.json);
      editions = builtins.attrNames catalog.editions;

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
      # only), and on the module snippet when there is one; the outputs
      # are named as editions/custom/flake.nix names them.
      custom = spec: snippet:
        let
          e = spec.edition;
          base = "sourceos-custom-${e}-x86_64";
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
          image = mk "${base}.iso" ''
            mkdir -p $out/iso
            i=0; while [ $i -lt 64 ]; do echo "sourceos custom ${spec.hostname} sector $i" >> $out/iso/${base}.iso; i=$((i+1)); done
          '' { };
          netbootSet = mk "${base}-netboot" ''
            mkdir -p $out
            echo "custom kernel of ${spec.hostname}" > $out/bzImage
            echo "custom initrd of $toplevel" > $out/initrd
            echo "kernel bzImage init=$toplevel/init initrd=initrd \''${cmdline}" > $out/netboot.ipxe
            echo 'initrd initrd' >> $out/netboot.ipxe
            echo 'boot' >> $out/netboot.ipxe
          '' { inherit toplevel; };
        in
        {
          custom-iso = image;
          custom-system = toplevel;
          custom-netboot = netbootSet;
          custom-netboot-system = toplevel;
        };

      # Disk images: the file where nixpkgs' image builders leave it, at
      # the top of the output.
      qcow2 = edition: mk "sourceos-${edition}-x86_64-qcow2" ''
        mkdir -p $out
        i=0; while [ $i -lt 128 ]; do echo "sourceos ${edition} qcow2 cluster $i" >> $out/sourceos-${edition}-x86_64.qcow2; i=$((i+1)); done
      '' { };
      gce = edition: mk "sourceos-${edition}-x86_64-gce" ''
        mkdir -p $out
        i=0; while [ $i -lt 96 ]; do echo "sourceos ${edition} gce block $i" >> $out/sourceos-${edition}-x86_64.raw.tar.gz; i=$((i+1)); done
      '' { };

      # What each kind of catalog.json builds: the image and the system
      # whose closure it carries.
      kinds = {
        iso = edition: { image = iso edition; toplevel = systemOf edition; };
        netboot = edition: { image = netboot edition; toplevel = systemOf edition; };
        qcow2 = edition: { image = qcow2 edition; toplevel = systemOf edition; };
        gce = edition: { image = gce edition; toplevel = systemOf edition; };
      };

      # The packages of catalog.json's instances on this system: every
      # attribute there is packages.{system}.<name>.
      expand = template: edition:
        builtins.replaceStrings [ "packages.{system}." "{arch}" "{edition}" ] [ "" "x86_64" edition ] template;
      instance = artifact: edition:
        let built = kinds.${artifact.kind} edition; in
        [ { name = expand artifact.attribute edition; value = built.image; } ]
        ++ (if artifact ? systemAttribute then [ { name = expand artifact.systemAttribute edition; value = built.toplevel; } ] else [ ]);
      catalogPackages = builtins.listToAttrs (builtins.concatMap
        (artifact: if builtins.elem "x86_64" artifact.arches then builtins.concatMap (instance artifact) artifact.editions else [ ])
        (builtins.attrValues catalog.artifacts));

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
      # tests/' image-<edition>-qcow2-boot boots the one .qcow2 file at the
      # top of the edition's qcow2 package; its stand-in checks that there
      # is exactly one there.
      diskBootTest = edition:
        let name = "image-${edition}-qcow2-boot"; in
        mk "vm-test-run-${name}" ''
          ${driverLog name}
          set -- $image/*.qcow2
          if [ $# -ne 1 ] || [ ! -f "$1" ]; then
            echo "want one .qcow2 file at the top of $image, found: $*" >&2
            exit 1
          fi
          echo "${name}: waiting for Reached target .*(multi-user.target|Multi-User System) to appear on console"
          echo "[  OK  ] Reached target multi-user.target - Multi-User System."
          mkdir -p $out && echo passed > $out/result
        '' { image = qcow2 edition; };
      failingTest = name: mk "vm-test-run-${name}" ''
        ${driverLog name}
        echo "${name}: must succeed: test -e /mnt/boot/loader/entries/x.conf"
        echo "Test \"${name}\" failed with error: \"command \`test -e /mnt/boot/loader/entries/x.conf\` failed (exit code 1)\"" >&2
        exit 1
      '' { };

    in
    {
      lib.customImages = custom;

      packages.${system} =
        catalogPackages
        // { sourceos-broken-iso = broken; sourceos-broken-system = broken; };

      # The shape of the real flake's NixOS tests: boot tests are checks,
      # install and disk image tests live under legacyPackages.<system>.tests.
      checks.${system}.edition-server-boot = passingTest "edition-server-boot";
      legacyPackages.${system}.tests = {
        edition-server-install = passingTest "edition-server-install";
        edition-broken-install = failingTest "edition-broken-install";
      } // builtins.listToAttrs (map
        (edition: { name = "image-${edition}-qcow2-boot"; value = diskBootTest edition; })
        catalog.artifacts.qcow2.editions);

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
