# NixOS tests of the editions, written with nixpkgs' test framework
# (pkgs.testers.runNixOSTest). Each boots the edition's system in QEMU and
# checks what the edition promises:
#   edition-desktop-boot   the display manager (GDM) runs and the system
#                          reaches graphical.target
#   edition-server-boot    sshd answers on port 22 from another machine and
#                          the firewall drops a port nobody opened
#   edition-edge-boot      the mesh daemon (tailscaled) runs and
#                          /etc/sourceos/channel names the channel
#   edition-server-install (x86_64 only, opt-in) the server edition with the
#                          fleet's disk layout (modules/hardware/vm.nix) is
#                          installed onto an empty disk with nixos-install
#   image-<edition>-qcow2-boot (opt-in) the edition's qcow2 package itself
#                          (not the edition in the test framework's VM)
#                          boots in QEMU by UEFI and reaches the edition's
#                          target: graphical.target for desktop (after the
#                          display manager started), multi-user.target
#                          otherwise
# An edition of catalog.json with no test here gets one that boots it to
# multi-user.target. The boot tests are flake checks; the install and disk
# image tests are not (they are heavy): flake.nix exposes them under
# legacyPackages.<system>.tests.
#
# diskImages: the qcow2 packages of this system by edition (flake.nix
# passes those of catalog.json's qcow2 artifacts).
{ lib, pkgs, modules, editions, diskImages ? { } }:

let
  inherit (pkgs.stdenv.hostPlatform) system efiArch;

  # Shared by every machine of every test.
  common = { system.stateVersion = "25.05"; };

  bootTest = edition: { nodes, testScript }:
    pkgs.testers.runNixOSTest {
      name = "edition-${edition}-boot";
      defaults = common;
      inherit nodes testScript;
    };

  boot = {
    desktop = bootTest "desktop" {
      nodes.machine = {
        imports = [ modules.desktop ];
        virtualisation.memorySize = 3072;
      };
      testScript = ''
        machine.wait_for_unit("display-manager.service")
        machine.wait_for_unit("graphical.target")
        machine.wait_until_succeeds("pgrep -x gdm")
      '';
    };

    server = bootTest "server" {
      nodes.server = { pkgs, ... }: {
        imports = [ modules.server ];
        environment.systemPackages = [ pkgs.netcat ];
      };
      nodes.client = { pkgs, ... }: {
        environment.systemPackages = [ pkgs.netcat ];
      };
      testScript = ''
        start_all()
        server.wait_for_unit("sshd.service")
        server.wait_for_open_port(22)
        server.wait_for_unit("firewall.service")
        client.wait_for_unit("multi-user.target")
        client.wait_until_succeeds("nc -z -w 5 server 22")
        # A listener the firewall was not told about stays unreachable.
        server.succeed("systemd-run --unit=probe-8080 $(command -v nc) -lk 8080")
        server.wait_for_open_port(8080)
        client.fail("nc -z -w 5 server 8080")
      '';
    };

    edge = bootTest "edge" {
      nodes.machine = { imports = [ modules.edge ]; };
      testScript = ''
        machine.wait_for_unit("multi-user.target")
        machine.wait_for_unit("tailscaled.service")
        machine.succeed('test "$(cat /etc/sourceos/channel)" = stable')
      '';
    };
  };

  # The server edition as the fleet installs it: the hosts' disk layout and
  # boot loader, with EFI variables left alone (the test VM boots by BIOS).
  installTarget = lib.nixosSystem {
    inherit system;
    modules = [
      modules.server
      ../modules/hardware/vm.nix
      {
        networking.hostName = "installed";
        boot.loader.efi.canTouchEfiVariables = lib.mkForce false;
      }
    ];
  };
  targetSystem = installTarget.config.system.build.toplevel;

  install.server = pkgs.testers.runNixOSTest {
    name = "edition-server-install";
    defaults = common;
    nodes.installer = { pkgs, ... }: {
      virtualisation.memorySize = 2048;
      virtualisation.emptyDiskImages = [ 8192 ];
      virtualisation.additionalPaths = [ targetSystem ];
      nix.settings.substituters = lib.mkForce [ ];
      environment.systemPackages = with pkgs; [ parted dosfstools e2fsprogs nixos-install-tools ];
    };
    testScript = ''
      installer.wait_for_unit("multi-user.target")
      installer.succeed(
          "parted --script /dev/vdb -- mklabel gpt"
          + " mkpart ESP fat32 1MiB 512MiB set 1 esp on"
          + " mkpart nixos ext4 512MiB 100%",
          "udevadm settle",
          "mkfs.vfat -F 32 -n ESP /dev/vdb1",
          "mkfs.ext4 -F -L nixos /dev/vdb2",
          "udevadm settle",
          "mkdir -p /mnt && mount /dev/disk/by-label/nixos /mnt",
          "mkdir -p /mnt/boot && mount /dev/disk/by-label/ESP /mnt/boot",
      )
      installer.succeed(
          "nixos-install --root /mnt --system ${targetSystem} --no-root-passwd --no-channel-copy >&2"
      )
      installer.succeed('test "$(readlink -f /mnt/nix/var/nix/profiles/system)" = ${targetSystem}')
      installer.succeed("test -e /mnt/boot/EFI/systemd/systemd-boot${efiArch}.efi")
      installer.succeed("ls /mnt/boot/loader/entries/ | grep -q conf")
    '';
  };

  # An edition with no test of its own above boots to multi-user.target.
  bootOf = edition: boot.${edition} or (bootTest edition {
    nodes.machine = { imports = [ modules.${edition} ]; };
    testScript = ''
      machine.wait_for_unit("multi-user.target")
    '';
  });

  # The qcow2 image as it is shipped, booted with no test instrumentation
  # in it: the driver has no shell in the guest, only its serial console,
  # where systemd reports the units it started and the targets it reached
  # (images/qcow2.nix puts the kernel's console there). The image is the
  # one .qcow2 file at the top of the package, the file the pipeline
  # ships; the guest writes to a copy-on-write overlay of it.
  diskTargets = {
    desktop = [
      "Started .*(display-manager\\.service|Display Manager)"
      "Reached target .*(graphical\\.target|Graphical Interface)"
    ];
  };
  multiUser = [ "Reached target .*(multi-user\\.target|Multi-User System)" ];
  qemu = pkgs.qemu_test;
  # KVM where the builder has it (the test derivation asks for the kvm
  # system feature), emulation otherwise; the aarch64 machine has no
  # display device unless given one, and GDM wants one.
  qemuCommand = {
    x86_64-linux = "${qemu}/bin/qemu-system-x86_64 -machine q35,accel=kvm:tcg -cpu max";
    aarch64-linux = "${qemu}/bin/qemu-system-aarch64 -machine virt,gic-version=max,accel=kvm:tcg -cpu max -device virtio-gpu-pci";
  }.${system};
  # UEFI firmware and its variable store, both read-only: systemd-boot is
  # at the removable-media path and needs no boot entry. The network is
  # QEMU's user network, with no way out of the guest.
  startCommand = edition: lib.concatStringsSep " " [
    qemuCommand
    "-m ${if edition == "desktop" then "3072" else "2048"} -smp 2"
    "-drive if=pflash,format=raw,unit=0,readonly=on,file=${pkgs.OVMF.firmware}"
    "-drive if=pflash,format=raw,unit=1,readonly=on,file=${pkgs.OVMF.variables}"
    "-nic user,model=virtio-net-pci,restrict=on"
  ];
  diskBoot = edition: image: pkgs.testers.runNixOSTest {
    name = "image-${edition}-qcow2-boot";
    nodes = { };
    testScript = ''
      import glob
      import os
      import subprocess
      import tempfile

      found = glob.glob("${image}/*.qcow2")
      assert len(found) == 1, f"want one .qcow2 file at the top of ${image}, found {found}"
      overlay = os.path.join(tempfile.mkdtemp(), "disk.qcow2")
      subprocess.run(
          ["${qemu}/bin/qemu-img", "create", "-f", "qcow2", "-F", "qcow2", "-b", found[0], overlay],
          check=True,
      )
      machine = create_machine(f"${startCommand edition} -drive file={overlay},if=virtio,format=qcow2")
      machine.start()
    '' + lib.concatMapStrings (regex: ''
      machine.wait_for_console_text(r"${regex}", timeout=1800)
    '') (diskTargets.${edition} or multiUser);
  };

  named = kind: tests: lib.mapAttrs' (edition: t: lib.nameValuePair "edition-${edition}-${kind}" t) tests;
in
{
  boot = named "boot" (lib.genAttrs editions bootOf);
  install = named "install" (lib.optionalAttrs (system == "x86_64-linux") install);
  disk = lib.mapAttrs' (edition: image: lib.nameValuePair "image-${edition}-qcow2-boot" (diskBoot edition image)) diskImages;
}
