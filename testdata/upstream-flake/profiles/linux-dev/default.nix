# Hosts that follow the dev channel.
{ ... }:
{
  imports = [ ../base/default.nix ];

  sourceos.build.channel = "dev";
}
