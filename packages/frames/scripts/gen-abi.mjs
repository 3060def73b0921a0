// Compiles gen-abi.c against the kernel's UAPI header and writes src/abi.gen.ts.
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const uapi = join(here, "../../../kmod/include/uapi");
const out = join(here, "../src/abi.gen.ts");
const exe = join(mkdtempSync(join(tmpdir(), "vigil-abi-")), "gen-abi");
execFileSync("cc", ["-Wall", "-Werror", "-I", uapi, "-o", exe, join(here, "gen-abi.c")], { stdio: "inherit" });
const text = execFileSync(exe, { encoding: "utf8" });
if (!existsSync(out) || readFileSync(out, "utf8") !== text) writeFileSync(out, text);
