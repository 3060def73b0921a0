// E-mail through `sendmail -t -i`. There is no MTA on a test machine, so a
// small script stands in for sendmail: it records its arguments and the
// message, and exits with the status the test asks for (75: try again later).
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createRegistry } from "@vigil/metrics";
import { Action, Origin, RuleEvent, RuleEvent_Kind } from "@vigil/proto";
import { waitFor } from "@vigil/testing";
import { fromRuleEvent, notifySectionSchema, NotifyMetrics, TargetWorker, createSender } from "../src/index.js";
import { memoryLogger } from "./support/receiver.js";

const dir = mkdtempSync(join(tmpdir(), "vigil-notify-mail-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A sendmail stand-in: fails with the statuses in $dir/fail (one per call, in order), then delivers into $dir/out-N. */
function fakeSendmail(failures: number[]): string {
  const path = join(dir, `sendmail-${failures.join("-") || "ok"}`);
  const state = `${path}.calls`;
  writeFileSync(state, "");
  writeFileSync(
    path,
    `#!/bin/sh
n=$(wc -l < ${state}); echo "$*" >> ${state}
codes="${failures.join(" ")}"
i=0; for c in $codes; do if [ $i -eq $n ]; then cat > /dev/null; echo "queue busy" >&2; exit $c; fi; i=$((i+1)); done
cat > ${path}.out-$n
`,
  );
  chmodSync(path, 0o755);
  return path;
}

const event = (reason: string) =>
  fromRuleEvent(
    RuleEvent.fromPartial({ kind: RuleEvent_Kind.KIND_ADDED, ts: 1_800_000_000, rule: { id: 7, action: Action.ACTION_DROP, srcCidr: "203.0.113.9/32", origin: Origin.ORIGIN_MANUAL, createdBy: "alice", reason } }),
  )!;

describe("notify: e-mail", () => {
  it("pipes an RFC 5322 message to sendmail -t -i, recipients in the headers, no header injection", async () => {
    const sendmail = fakeSendmail([]);
    const [target] = notifySectionSchema.parse({ targets: [{ name: "ops", type: "email", to: ["ops@example.org", "noc@example.org"], from: "vigil@fw1.example.org", sendmail }] }).targets;
    await createSender(target, 5000).send(event("too many logins\nBcc: attacker@example.net"), new AbortController().signal);
    expect(readFileSync(`${sendmail}.calls`, "utf8")).toBe("-t -i\n");
    const msg = readFileSync(`${sendmail}.out-0`, "utf8");
    const [head, body] = msg.split("\n\n");
    expect(head).toMatch(/^From: vigil@fw1\.example\.org$/m);
    expect(head).toMatch(/^To: ops@example\.org, noc@example\.org$/m);
    expect(head).toMatch(/^Subject: \[vigil\] Vigil on .* blocked 203\.0\.113\.9\/32 permanently \(by alice\): too many logins Bcc: attacker@example\.net$/m);
    expect(head).not.toMatch(/^Bcc:/m);
    expect(head).toMatch(/^X-Vigil-Kind: block$/m);
    expect(body).toMatch(/blocked 203\.0\.113\.9\/32/);
  });

  it("retries when sendmail says try again later (75), dead-letters when it is missing", async () => {
    const sendmail = fakeSendmail([75, 75]);
    const section = notifySectionSchema.parse({
      targets: [
        { name: "mail", type: "email", to: ["ops@example.org"], sendmail },
        { name: "nomta", type: "email", to: ["ops@example.org"], sendmail: join(dir, "no-such-sendmail") },
      ],
      retries: 3,
      backoffMs: 20,
      maxBackoffMs: 40,
    });
    const registry = createRegistry("notify");
    const metrics = new NotifyMetrics(registry);
    const { log, text } = memoryLogger();
    const workers = section.targets.map((t) => new TargetWorker(createSender(t, 5000), section, metrics, log));
    for (const w of workers) {
      w.start();
      w.offer(event("scan"));
    }
    const value = async (name: string, target: string) => Number(new RegExp(`^${name}\\{[^}]*target="${target}"[^}]*\\} (\\S+)$`, "m").exec(await registry.metrics())?.[1]);
    try {
      await waitFor("mail delivered, nomta dead", async () => (await value("vigil_notify_sent_total", "mail")) === 1 && (await value("vigil_notify_dead_letters_total", "nomta")) === 1, 10_000);
    } finally {
      for (const w of workers) await w.stop();
    }
    expect(readFileSync(`${sendmail}.calls`, "utf8").trim().split("\n")).toHaveLength(3);
    expect(readdirSync(dir).filter((f) => f.startsWith("sendmail-75-75.out-"))).toEqual(["sendmail-75-75.out-2"]);
    expect(await value("vigil_notify_failed_attempts_total", "mail")).toBe(2);
    // No MTA at all: retrying cannot help.
    expect(await value("vigil_notify_failed_attempts_total", "nomta")).toBe(1);
    expect(text()).toMatch(/mail: .*sendmail-75-75 exited 75: queue busy/);
    expect(text()).toMatch(/nomta: cannot run .*no-such-sendmail \(ENOENT\)/);
  });
});
