#!/usr/bin/env bash
# Makes sure the tools the pipeline and its tests use are installed and that
# Nix is usable: nix-bin, minisign and shellcheck from Debian's packages,
# flakes enabled, and builds allowed without build users (root on a CI
# machine or a build VM). Idempotent; run by .ci/run and by hand.
set -euo pipefail

packages=()
command -v nix >/dev/null 2>&1 || packages+=(nix-bin)
command -v minisign >/dev/null 2>&1 || packages+=(minisign)
command -v shellcheck >/dev/null 2>&1 || packages+=(shellcheck)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if [ "${#packages[@]}" -gt 0 ]; then
  echo "ensure-tools: installing ${packages[*]}" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
fi

# nix.conf: flakes on; as root with no nixbld users, no build-users-group.
conf=/etc/nix/nix.conf
as_root mkdir -p /etc/nix
as_root touch "$conf"
add_setting() {
  local key=$1 line=$2
  if ! grep -Eq "^[[:space:]]*${key}[[:space:]]*=" "$conf"; then
    echo "$line" | as_root tee -a "$conf" >/dev/null
  fi
}
add_setting experimental-features 'experimental-features = nix-command flakes'
if [ "$(id -u)" -eq 0 ] && ! getent group nixbld >/dev/null; then
  add_setting build-users-group 'build-users-group ='
fi

nix --version >&2
minisign -v >&2
shellcheck --version | sed -n 2p >&2
