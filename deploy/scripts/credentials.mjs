#!/usr/bin/env node
// Generates an install's credentials into DIR (deploy/install.sh runs it):
// one NATS user per service with its subject permissions (nats-users.conf,
// which nats-server.conf includes), a password file per service, and the
// console's login token. Existing files are kept, so a reinstall does not
// lock the running services out. Every file is 0600; nothing is printed.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createNatsAuth, freshConsoleLogin } from "../../packages/stack/dist/index.js";

const dir = process.argv[2];
if (!dir) {
  process.stderr.write("usage: credentials.mjs DIR\n");
  process.exit(2);
}
createNatsAuth(dir);
if (!existsSync(join(dir, "console.token"))) freshConsoleLogin(dir);
