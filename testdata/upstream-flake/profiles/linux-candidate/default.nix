# Hosts that follow the candidate channel.
{ ... }:
{
  imports = [ ../base/default.nix ];

  sourceos.build.channel = "candidate";
}
