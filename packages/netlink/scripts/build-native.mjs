import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildAddon } from "../../../scripts/build-addon.mjs";

buildAddon(join(dirname(fileURLToPath(import.meta.url)), ".."));
