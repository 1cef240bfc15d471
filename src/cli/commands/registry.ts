import { flag, str, strs, type Command } from "../command.js";
import { loadConfig } from "../../config/config.js";
import { UsageError } from "../../protocol/errors.js";
import { openDb } from "../../serve/db-open.js";
import { loadOrCreateSigningKey } from "../../serve/keys.js";
import { createToken } from "../../serve/tokens.js";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { dataDirOf, dbOf } from "../shared.js";

/** `cpr registry key` and `cpr registry token create`. */
export const command: Command = {
  name: "registry",
  usage: "cpr registry key [--data DIR] | cpr registry token create [--data DIR] [--db URL] [--worker] --set ROOT... [--note TEXT]",
  summary: "Manage a registry's signing key and write tokens",
  help: `cpr registry key
  Prints the registry's public signing key (name:base64), the value clients put in trusted-public-keys
  (config registry.keys, cpr get --key). The key pair is created in the data directory if there is none
  (signing-key.sec, mode 0600, and signing-key.pub), exactly as cpr serve does at first start.

cpr registry token create --set ROOT [--set ROOT]... [--note TEXT]
  Creates a write token scoped to the given set roots (40 or 64 hex digits; cpr ls REMOTE prints a set's root)
  and prints it on stdout. Only its SHA-256 is stored, in the registry's database: the token cannot be shown
  again. Clients send it as Authorization: Bearer <token> (cpr build --push --token, config registry.token).
  A root the registry's database does not list yet (not indexed, or mistyped) gets a warning.
  With --worker the token is a worker token (docs/farm.md): it may claim the sets' build jobs and record
  their builds (uploads included) with cpr worker, and nothing else; a write token may not claim jobs.

Options:
  --data DIR     Data directory (config registry.data; default $XDG_DATA_HOME/cpr/registry)
  --db URL       Database: sqlite:PATH, a path, or postgres://… (config registry.db; default DIR/registry.sqlite)
  --set ROOT     A set root the token may write (repeatable, at least one)
  --note TEXT    A note stored with the token (who or what it is for)
  --worker       Create a worker token (cpr worker) instead of a write token
  --json         key: {"publicKey"}; token create: {"token","sets","note","scope"}

Exit codes: 0 ok, 1 failed, 2 usage error.
`,
  options: {
    data: { type: "string" },
    db: { type: "string" },
    set: { type: "string", multiple: true },
    note: { type: "string" },
    worker: { type: "boolean" },
  },
  maxPositionals: 2,
  async run(ctx, args) {
    const [sub, action] = args.positionals;
    const { config, warnings } = await loadConfig({ cwd: ctx.cwd, env: ctx.env });
    for (const w of warnings) ctx.term.warn(w.code, w.message);
    const dataDir = dataDirOf(ctx, str(args, "data"), config);
    if (sub === "key") {
      if (action !== undefined) throw new UsageError(`cpr registry key takes no argument, got ${JSON.stringify(action)}`);
      const key = await loadOrCreateSigningKey(dataDir);
      if (flag(args, "json")) ctx.term.json({ publicKey: key.publicKey }, { line: true });
      else ctx.term.out(key.publicKey);
      return 0;
    }
    if (sub === "token") {
      if (action !== "create")
        throw new UsageError(action === undefined ? "missing action: cpr registry token create" : `unknown action 'token ${action}'`, {
          hint: "cpr registry token create --set ROOT",
        });
      const sets = strs(args, "set");
      if (sets.length === 0) throw new UsageError("a token needs at least one --set ROOT it may write");
      const note = str(args, "note") ?? null;
      await mkdir(dataDir, { recursive: true });
      const db = await openDb(dbOf(ctx, str(args, "db"), config) ?? join(dataDir, "registry.sqlite"));
      try {
        await db.migrate();
        const scope = flag(args, "worker") ? "worker" : "write";
        const token = await createToken(db, sets, note, scope);
        const roots = sets.map((s) => s.trim().toLowerCase());
        // A mistyped root makes a token that can never write anything: say so (a set indexed later is fine).
        const indexed = new Set((await db.listSets()).map((x) => x.root));
        for (const r of new Set(roots)) {
          if (!indexed.has(r))
            ctx.term.warn(
              "registry.set-not-indexed",
              `set ${r} is not indexed by this registry (yet): the token can write it once cpr serve indexes it (--set URL, config registry.sets)`,
            );
        }
        if (flag(args, "json")) ctx.term.json({ token, sets: [...new Set(roots)], note, scope }, { line: true });
        else ctx.term.out(token);
        return 0;
      } finally {
        await db.close();
      }
    }
    throw new UsageError(sub === undefined ? "missing subcommand: key or token create" : `unknown subcommand '${sub}'`, {
      hint: "cpr registry key, or cpr registry token create --set ROOT",
    });
  },
};
