derivation {
  name = "cowsay-${cfg.package.version}";
  inherit (cfg) system;
  builder = "/bin/sh";
  args = [ "-c" "echo moo > $out" ];
}
