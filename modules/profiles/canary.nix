# Canary profile: hosts that run the development channel ahead of the
# fleet, with the same hardening as stable.
{ ... }:
{
  imports = [ ./hardened.nix ];

  sourceos.build.channel = "dev";
}
