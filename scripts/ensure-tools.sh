#!/usr/bin/env bash
# Makes sure the tools the pipeline and its tests use are installed and that
# Nix is usable and safe: nix-bin, minisign, shellcheck, busybox-static, time
# and openssl from Debian's packages; flakes enabled; every build in Nix's sandbox with no
# silent fallback to an unsandboxed build (docs/threat-model.md), with a
# static /bin/sh inside it; build users when the nixbld group exists.
# Idempotent; run by .ci/run and by hand.
set -euo pipefail

packages=()
command -v nix >/dev/null 2>&1 || packages+=(nix-bin)
command -v minisign >/dev/null 2>&1 || packages+=(minisign)
command -v shellcheck >/dev/null 2>&1 || packages+=(shellcheck)
[ -x /bin/busybox ] || packages+=(busybox-static)
[ -x /usr/bin/time ] || packages+=(time) # GNU time: memory bounds in tests
command -v openssl >/dev/null 2>&1 || packages+=(openssl) # a second verifier of our envelopes

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if [ "${#packages[@]}" -gt 0 ]; then
  echo "ensure-tools: installing ${packages[*]}" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
fi

conf=/etc/nix/nix.conf
as_root mkdir -p /etc/nix
as_root touch "$conf"
# set_setting KEY VALUE: replace KEY's line in nix.conf, or add it.
set_setting() {
  local key=$1 value=$2
  if grep -Eq "^[[:space:]]*${key}[[:space:]]*=" "$conf"; then
    as_root sed -i -E "s|^[[:space:]]*${key}[[:space:]]*=.*|${key} = ${value}|" "$conf"
  else
    echo "${key} = ${value}" | as_root tee -a "$conf" >/dev/null
  fi
}
set_setting experimental-features 'nix-command flakes'
set_setting sandbox true
set_setting sandbox-fallback false
set_setting extra-sandbox-paths /bin/sh=/bin/busybox
if getent group nixbld >/dev/null; then
  set_setting build-users-group nixbld
elif [ "$(id -u)" -eq 0 ]; then
  set_setting build-users-group '' # root, no build users: the sandbox still isolates builders
fi

nix --version >&2
minisign -v >&2
shellcheck --version | sed -n 2p >&2
