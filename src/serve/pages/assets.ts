/**
 * The pages' static files (assets/site.css, assets/site.js), read once from the repository (no build step) and
 * served at /static/<name>?v=<hash>: the hash changes with the content, so a page always links the file it was
 * written for, which browsers may then cache for good.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { AssetUrls } from "./render.js";

export interface Asset {
  readonly body: Buffer;
  readonly type: string;
  readonly hash: string;
}

/** The assets directory: src/serve/pages/assets of the repository (this file runs as dist/src/serve/pages/assets.js). */
const DIR = new URL("../../../../src/serve/pages/assets/", import.meta.url);

const FILES: Record<string, string> = {
  "site.css": "text/css; charset=utf-8",
  "site.js": "text/javascript; charset=utf-8",
};

export function loadAssets(): { files: Map<string, Asset>; urls: AssetUrls } {
  const files = new Map<string, Asset>();
  for (const [name, type] of Object.entries(FILES)) {
    const body = readFileSync(new URL(name, DIR));
    files.set(name, { body, type, hash: createHash("sha256").update(body).digest("hex").slice(0, 16) });
  }
  const url = (name: string): string => `/static/${name}?v=${files.get(name)!.hash}`;
  return { files, urls: { css: url("site.css"), js: url("site.js") } };
}
