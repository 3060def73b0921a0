#!/usr/bin/env node
// Generates an install's credentials into DIR (deploy/install.sh runs it):
// one NATS user per service with its subject permissions (nats-users.conf,
// which nats-server.conf includes), a password file per service, and the
// console's login token. Existing files are kept, so a reinstall does not
// lock the running services out. Every file is 0600; nothing is printed.
// --grafana (the compose lab): also Grafana's admin password, grafana-admin.password.
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createNatsAuth, freshConsoleLogin } from "../../packages/stack/dist/index.js";

const [dir, ...flags] = process.argv.slice(2);
if (!dir || flags.some((f) => f !== "--grafana")) {
  process.stderr.write("usage: credentials.mjs DIR [--grafana]\n");
  process.exit(2);
}
createNatsAuth(dir);
if (!existsSync(join(dir, "console.token"))) freshConsoleLogin(dir);
// The compose lab's Grafana admin password: $VIGIL_GRAFANA_PASSWORD when set, else made once and kept.
if (flags.includes("--grafana")) {
  const file = join(dir, "grafana-admin.password");
  const chosen = process.env.VIGIL_GRAFANA_PASSWORD;
  if (chosen || !existsSync(file)) {
    writeFileSync(file, (chosen || randomBytes(24).toString("base64url")) + "\n", { mode: 0o600 });
    chmodSync(file, 0o600);
  }
}
