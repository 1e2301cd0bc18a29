# A flake shaped like the SourceOS tree this pipeline replaces the bash of
# (github:SourceOS-Linux/source-os at 69ed0ae), with the names it uses and
# minimal bodies, so the pipeline is tested end to end against that shape
# offline (docs/adopting.md):
#   packages.<system>.sourceos-installer-iso      one installer ISO per arch
#   packages.x86_64-linux.sourceos-image-qcow2-*  preinstalled disk images
#                                                 (desktop, canary, stable)
#   nixosModules.desktop-gnome|server|edge        the editions
#   hosts/*                                       hosts that take extra
#                                                 module arguments (self,
#                                                 syncdPkg, bootPkg) and sops
# As in that tree, images come from nixos-generators' layout: the ISO at
# iso/nixos-*.iso, a qcow2 image at nixos.qcow2. Nothing here is NixOS: the
# builders are /bin/sh (no inputs, no network), and the hosts are checked
# in module mode against the stand-ins of hosts/facts.json, which the
# real tree's nixosConfigurations (nixpkgs, sops-nix) give when online.
{
  description = "Fixture: the SourceOS tree's shape";

  outputs = { self }:
    let
      mk = system: name: script: env: derivation ({
        inherit name system;
        builder = "/bin/sh";
        args = [ "-c" script ];
      } // env);

      # A small system closure: toplevel -> etc -> lib.
      systemOf = system: name:
        let
          lib = mk system "sourceos-${name}-lib-1.0" ''
            mkdir -p $out/lib
            i=0; while [ $i -lt 32 ]; do echo "lib of ${name} $i" >> $out/lib/libsourceos.so; i=$((i+1)); done
          '' { };
          etc = mk system "sourceos-${name}-etc" ''
            mkdir -p $out/etc
            echo "LIB=$lib" > $out/etc/profile
          '' { inherit lib; };
        in
        mk system "nixos-system-${name}-25.11" ''
          mkdir -p $out
          ln -s $etc/etc $out/etc
        '' { inherit etc; };

      # nixos-generators' install-iso layout; the image names its system
      # (a squashfs hides it from Nix's reference scanner, so the ISO's
      # closure is the ISO alone).
      installerISO = system: mk system "nixos-25.11-${system}.iso" ''
        mkdir -p $out/iso
        i=0; while [ $i -lt 128 ]; do echo "sourceos installer ${system} sector $i" >> $out/iso/nixos-25.11-${system}.iso; i=$((i+1)); done
      '' { };

      # nixos-generators' qcow layout.
      qcow = system: name: mk system "nixos-disk-image-${name}" ''
        mkdir -p $out
        i=0; while [ $i -lt 96 ]; do echo "sourceos ${name} qcow2 cluster $i" >> $out/nixos.qcow2; i=$((i+1)); done
        echo "$toplevel" >> $out/nixos.qcow2
      '' { toplevel = systemOf system name; };

      tool = system: name: mk system name ''
        mkdir -p $out/bin
        echo "echo ${name}" > $out/bin/${name}
      '' { };
    in
    {
      nixosModules = {
        sourceos-syncd = import ./modules/nixos/sourceos-syncd/default.nix;
        desktop-gnome = import ./profiles/desktop-gnome/default.nix;
        server = import ./profiles/server/default.nix;
        edge = import ./profiles/edge/default.nix;
      };

      packages = {
        x86_64-linux = {
          meshd = tool "x86_64-linux" "meshd";
          sourceos-installer-iso = installerISO "x86_64-linux";
          sourceos-image-qcow2-desktop = qcow "x86_64-linux" "desktop";
          sourceos-image-qcow2-canary = qcow "x86_64-linux" "canary-x86_64";
          sourceos-image-qcow2-stable = qcow "x86_64-linux" "stable-x86_64";
          default = self.packages.x86_64-linux.meshd;
        };
        aarch64-linux = {
          meshd = tool "aarch64-linux" "meshd";
          sourceos-installer-iso = installerISO "aarch64-linux";
        };
      };
    };
}
