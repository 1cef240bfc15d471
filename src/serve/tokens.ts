/**
 * Write tokens: `cpr_<base64url>` strings; only their SHA-256 is stored, with the set roots they may write.
 */
import { createHash, randomBytes } from "node:crypto";
import { CprError } from "../protocol/errors.js";
import type { FastifyReply, FastifyRequest } from "fastify";
import { sendError, type RegistryContext } from "./context.js";
import type { RegistryDb, TokenRow, TokenScope } from "./db.js";

const ROOT = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

/** Hex SHA-256 of the token text: what the database keeps. */
export function tokenHash(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/** The roots, lowercased and checked (40 or 64 hex digits), without duplicates. */
export function normalizeRoots(sets: readonly string[]): string[] {
  const out: string[] = [];
  for (const s of sets) {
    const root = s.trim().toLowerCase();
    if (!ROOT.test(root)) {
      throw new CprError("registry.token-set", `a token is scoped to set roots (40 or 64 hex digits), got ${JSON.stringify(s)}`, {
        hint: "the root is printed by `cpr ls REMOTE` (first line) and listed by GET /api/v1/sets",
      });
    }
    if (!out.includes(root)) out.push(root);
  }
  return out;
}

/**
 * Creates a token scoped to `sets` (roots, 40/64 hex), stores its hash, and returns the token text. A "worker" token
 * may only claim the sets' build jobs and record their builds (uploads included); a "write" token may not claim jobs.
 */
export async function createToken(
  db: RegistryDb,
  sets: readonly string[],
  note: string | null = null,
  scope: TokenScope = "write",
): Promise<string> {
  const roots = normalizeRoots(sets);
  if (roots.length === 0)
    throw new CprError("registry.token-set", "a token needs at least one set root it may write", { hint: "pass --set ROOT" });
  const token = `cpr_${randomBytes(32).toString("base64url")}`;
  await db.insertToken({ hash: tokenHash(token), sets: roots, note, createdAt: Date.now(), scope });
  return token;
}

/** The token row for a bearer token, or null when unknown. */
export async function checkToken(db: RegistryDb, token: string): Promise<TokenRow | null> {
  if (!token.startsWith("cpr_") || token.length > 200) return null;
  return db.tokenByHash(tokenHash(token));
}

/** The token of the request, or null after answering 401. */
export async function authorize(ctx: RegistryContext, req: FastifyRequest, reply: FastifyReply): Promise<TokenRow | null> {
  const header = req.headers.authorization;
  const m = typeof header === "string" ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  if (!m) {
    void sendError(
      reply.header("www-authenticate", 'Bearer realm="cpr registry"'),
      401,
      "this request needs Authorization: Bearer <token>",
    );
    return null;
  }
  const row = await checkToken(ctx.db, m[1]!);
  if (!row) {
    void sendError(reply.header("www-authenticate", 'Bearer realm="cpr registry", error="invalid_token"'), 401, "unknown token");
    return null;
  }
  return row;
}
