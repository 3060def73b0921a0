// Without libnftables' headers the binding is skipped with a warning: the
// service then drives nftables by running `nft -j -f`.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildAddon } from "../../../scripts/build-addon.mjs";

if (!existsSync("/usr/include/nftables/libnftables.h")) {
  process.stderr.write("build: services/rules: libnftables-dev is not installed; the in-process nftables binding is skipped (the service will run `nft`)\n");
  process.exit(0);
}
buildAddon(join(dirname(fileURLToPath(import.meta.url)), ".."));
