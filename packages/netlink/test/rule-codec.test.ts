// Builds test/native/test_rule_codec.cc with native/src/rule_codec.cc under
// ASan and UBSan (as kmod's `make check` does for match.c) and runs it: the
// attribute codec of the netlink addon against round trips and hostile replies.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");
const cxx = process.env.CXX ?? "g++";

function skipReason(): string | null {
  if (spawnSync(cxx, ["--version"]).status !== 0) return `no C++ compiler (${cxx}); install build-essential`;
  if (!existsSync("/usr/include/libmnl/libmnl.h")) return "libmnl-dev is not installed (scripts/deps/rules.apt)";
  return null;
}

const skip = skipReason();
if (skip) console.warn(`rule codec unit test skipped: ${skip}`);
const dir = mkdtempSync(join(tmpdir(), "vigil-rule-codec-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(skip)(`netlink rule codec under ASan/UBSan${skip ? ` (skipped: ${skip})` : ""}`, () => {
  it("round-trips rules, stats and config and refuses every hostile reply with a reason", () => {
    const bin = join(dir, "test_rule_codec");
    execFileSync(
      cxx,
      [
        "-std=c++17", "-O1", "-g", "-Wall", "-Wextra", "-Werror",
        "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer",
        `-I${join(pkg, "native/src")}`, `-I${join(pkg, "../../kmod/include/uapi")}`,
        "-o", bin, join(pkg, "test/native/test_rule_codec.cc"), join(pkg, "native/src/rule_codec.cc"), "-lmnl",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const run = spawnSync(bin, [], { encoding: "utf8", timeout: 120_000 });
    const output = `${run.stdout}${run.stderr}`;
    expect(output).toMatch(/\d+ passed, 0 failed/);
    expect(output).not.toMatch(/AddressSanitizer|runtime error/);
    expect(run.status, output).toBe(0);
  }, 180_000);
});
