import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * Install a git hook that runs the built cpr (`$CPR_NODE $CPR_BIN $CPR_ARGS`, the words of CPR_ARGS; from
 * $CPR_HOOK_CWD when set) and records under $CPR_HOOK_OUT/<name>.* the GIT_ variables git gave it, cpr's stdout,
 * stderr and exit code. It exits with cpr's code (so a failing pre-receive rejects the push).
 */
export function installHook(hooksDir: string, name: string): void {
  mkdirSync(hooksDir, { recursive: true });
  const out = `"$CPR_HOOK_OUT/${name}`;
  const script = [
    "#!/bin/sh",
    `env | grep '^GIT_' | sort > ${out}.env"`,
    'if [ -n "$CPR_HOOK_CWD" ]; then cd "$CPR_HOOK_CWD" || exit 1; fi',
    `"$CPR_NODE" "$CPR_BIN" $CPR_ARGS < /dev/null > ${out}.out" 2> ${out}.err"`,
    "code=$?",
    `echo $code > ${out}.code"`,
    "exit $code",
    "",
  ].join("\n");
  writeFileSync(join(hooksDir, name), script);
  chmodSync(join(hooksDir, name), 0o755);
}

/** The environment for the git command whose hook runs cpr: CPR_ARGS are the cpr arguments (words). */
export function hookEnv(
  base: NodeJS.ProcessEnv,
  bin: string,
  outDir: string,
  args: string,
  extra: NodeJS.ProcessEnv = {},
): NodeJS.ProcessEnv {
  return { ...base, NO_COLOR: "1", CPR_HOOK_OUT: outDir, CPR_NODE: process.execPath, CPR_BIN: bin, CPR_ARGS: args, ...extra };
}

/** What the hook `name` recorded: its GIT_ variables (`NAME=value` lines), cpr's output and exit code. */
export function hookResult(outDir: string, name: string): { env: string; stdout: string; stderr: string; code: string } {
  const read = (ext: string) => readFileSync(join(outDir, `${name}.${ext}`), "utf8");
  return { env: read("env"), stdout: read("out"), stderr: read("err"), code: read("code").trim() };
}
