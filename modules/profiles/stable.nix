# Stable profile: hosts that follow the stable channel.
{ ... }:
{
  imports = [ ./hardened.nix ];

  sourceos.build.channel = "stable";
}
