derivation {
  name = "fmt-${cfg.package.version}";
  inherit (cfg) system;
  builder = "/bin/sh";
  args = [ "-c" "echo 'fmt ${cfg.package.version}: keeps your comments' > $out" ];
}
