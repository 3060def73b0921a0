import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { extname, join, relative, sep } from "node:path";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
  ".woff2": "font/woff2",
  ".map": "application/json",
  ".txt": "text/plain; charset=utf-8",
};

export interface Asset {
  body: Buffer;
  type: string;
  etag: string;
  immutable: boolean;
}

/**
 * The built front end, read once at start: a handful of files, served from
 * memory by exact path, so no request can name a file outside the build.
 */
export function loadAssets(dir: string): Map<string, Asset> {
  const out = new Map<string, Asset>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else {
        const body = readFileSync(path);
        const url = "/" + relative(dir, path).split(sep).join("/");
        out.set(url, {
          body,
          type: TYPES[extname(name)] ?? "application/octet-stream",
          etag: `"${createHash("sha1").update(body).digest("base64url").slice(0, 16)}"`,
          immutable: url.startsWith("/assets/"),
        });
      }
    }
  };
  walk(dir);
  return out;
}
