/**
 * Nix for the tests: no build users, no sandbox, no substituters (the test machines have no network and may have no
 * nixbld group), and the `nix` command enabled. cpr itself never sets these: users configure Nix. Every test (and
 * benchmark) that runs Nix uses this configuration; one that needs a private store or HOME passes it in `extra`.
 */
export const NIX_TEST_CONFIG = "build-users-group =\nsandbox = false\nsubstituters =\nexperimental-features = nix-command";

/** `base` (default: this process's environment) with NIX_CONFIG = NIX_TEST_CONFIG, then `extra`. */
export function nixTestEnv(base: NodeJS.ProcessEnv = process.env, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...base, NIX_CONFIG: NIX_TEST_CONFIG, ...extra };
}
