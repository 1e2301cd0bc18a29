#!/usr/bin/env bash
# Startup script of a GCP build VM (metadata key startup-script). The only
# shell on this lane: install Nix, fetch the compiled mage binary, trust the
# SourceOS cache when it is configured, then hand over to `mage gcp:build`,
# which reads the rest of the metadata, builds, reports to status.json and
# deletes the VM. See docs: "The GCP build VM lane".
set -euo pipefail

md=http://${GCE_METADATA_HOST:-metadata.google.internal}/computeMetadata/v1
meta() { curl -fsS -H 'Metadata-Flavor: Google' "$md/$1"; }
attr() { meta "instance/attributes/$1" 2>/dev/null || true; }

# If this script fails before gcp:build runs, nothing else would delete the
# VM: do it here (unless sourceos-keep-vm=1). gcp:build deletes it otherwise.
delete_self() {
  [ "$(attr sourceos-keep-vm)" = 1 ] && return
  tok=$(meta instance/service-accounts/default/token | sed -E 's/.*"access_token" *: *"([^"]+)".*/\1/')
  zone=$(meta instance/zone); zone=${zone##*/}
  curl -fsS -X DELETE -H "Authorization: Bearer $tok" \
    "https://compute.googleapis.com/compute/v1/projects/$(meta project/project-id)/zones/$zone/instances/$(meta instance/name)" >/dev/null
}
trap 'echo "gcp-startup: failed before gcp:build; deleting this VM" >&2; delete_self' ERR

# 1. Nix from Debian's archive (signed packages; the same as scripts/ensure-tools.sh):
#    every build in Nix's sandbox with no silent fallback, and builders
#    (the nixbld group) cut off from the metadata server, which hands out
#    this VM's service account token (docs/threat-model.md).
if ! command -v nix >/dev/null 2>&1 || [ ! -x /bin/busybox ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nix-bin busybox-static curl ca-certificates >/dev/null
fi
conf=/etc/nix/nix.conf
mkdir -p /etc/nix && touch "$conf"
set_setting() { # KEY VALUE: replace KEY's line, or add it
  if grep -Eq "^[[:space:]]*$1[[:space:]]*=" "$conf"; then
    sed -i -E "s|^[[:space:]]*$1[[:space:]]*=.*|$1 = $2|" "$conf"
  else
    echo "$1 = $2" >>"$conf"
  fi
}
set_setting experimental-features 'nix-command flakes'
set_setting sandbox true
set_setting sandbox-fallback false
set_setting extra-sandbox-paths /bin/sh=/bin/busybox
if getent group nixbld >/dev/null; then
  set_setting build-users-group nixbld
  # Fixed-output derivations share the host's network even in the sandbox.
  if command -v iptables >/dev/null 2>&1; then
    iptables -I OUTPUT -d 169.254.169.254 -m owner --gid-owner nixbld -j REJECT
  else
    echo "gcp-startup: no iptables; builders can reach the metadata server (it holds no key, but the VM's token)" >&2
  fi
else
  set_setting build-users-group '' # root without build users: the sandbox still isolates builders
fi

# 2. The compiled targets (`go run magefile.go -compile`), checked against their digest.
url=$(attr sourceos-mage-url)
sum=$(attr sourceos-mage-sha256)
if [ -z "$url" ] || [ -z "$sum" ]; then
  echo "gcp-startup: set the metadata keys sourceos-mage-url and sourceos-mage-sha256" >&2
  false
fi
auth=() # the VM's token goes to Cloud Storage only
case $url in
  https://storage.googleapis.com/*)
    tok=$(meta instance/service-accounts/default/token | sed -E 's/.*"access_token" *: *"([^"]+)".*/\1/')
    auth=(-H "Authorization: Bearer $tok") ;;
esac
curl -fsSL --retry 5 "${auth[@]}" -o /usr/local/bin/mage "$url"
echo "$sum  /usr/local/bin/mage" | sha256sum -c --quiet
chmod 0755 /usr/local/bin/mage

# 3. Pull from the SourceOS cache when it is configured (cache:nixConf prints
#    the nix.conf lines). Best effort: without it the build is only slower.
cache_url=$(attr sourceos-cache-url)
cache_key=$(attr sourceos-cache-pubkey)
if [ -n "$cache_url" ] && [ -n "$cache_key" ]; then
  if lines=$(NIX_CACHE_URL=$cache_url NIX_CACHE_PUBKEY=$cache_key mage cache:nixConf); then
    printf '%s\n' "$lines" >>/etc/nix/nix.conf
  else
    echo "gcp-startup: cache:nixConf failed; building without the SourceOS cache" >&2
  fi
fi

# 4. Everything else is the target's job, including deleting this VM.
trap - ERR
mkdir -p /var/lib/sourceos-build && cd /var/lib/sourceos-build
exec mage gcp:build
