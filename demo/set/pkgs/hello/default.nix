{ greet ? "Hello, world!" }:
builtins.derivation {
  name = "hello-2.12.1";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  args = [ "-c" "echo '${greet}' > $out" ];
}
