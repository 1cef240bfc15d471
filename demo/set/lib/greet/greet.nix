# A trivial atom ([compose.as] nix): this file is evaluated with `atoms` (its dependencies) and `cfg` (its
# [package] table, and cfg.system) in scope, and its value is the atom's value: here, greetings by language.
{
  en = "Hello, world!";
  fr = "Bonjour le monde !";
  ja = "こんにちは世界";
}
