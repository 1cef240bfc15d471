# hello's value is a derivation. `atoms.deps.from.demo.greet` is the value of the greet atom (set tag `demo`), and
# `cfg.package` is this atom's [package] table from atom.toml.
let
  greet = atoms.deps.from.demo.greet;
in
derivation {
  name = "hello-${cfg.package.version}";
  inherit (cfg) system;
  builder = "/bin/sh";
  args = [ "-c" "echo '${greet.en}' > $out" ];
}
