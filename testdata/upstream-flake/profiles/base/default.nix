# Shared by every profile: the fixture's options, key-only SSH.
{ ... }:
{
  imports = [ ../../modules/sourceos/default.nix ];

  services.openssh = {
    enable = true;
    settings.PasswordAuthentication = false;
  };
}
