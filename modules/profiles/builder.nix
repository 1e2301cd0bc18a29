# Builder profile: a host that builds SourceOS images for its channel.
{ ... }:
{
  sourceos.build.role = "builder";
  boot.tmp.cleanOnBoot = true;
}
