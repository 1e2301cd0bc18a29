# Hosts that follow the stable channel.
{ ... }:
{
  imports = [ ../base/default.nix ];

  sourceos.build.channel = "stable";
}
