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

# 1. Nix from Debian's archive (signed packages; the same as scripts/ensure-tools.sh).
if ! command -v nix >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nix-bin curl ca-certificates >/dev/null
fi
mkdir -p /etc/nix && touch /etc/nix/nix.conf
grep -q '^experimental-features' /etc/nix/nix.conf || echo 'experimental-features = nix-command flakes' >>/etc/nix/nix.conf
if ! getent group nixbld >/dev/null && ! grep -q '^build-users-group' /etc/nix/nix.conf; then
  echo 'build-users-group =' >>/etc/nix/nix.conf # root without build users
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
