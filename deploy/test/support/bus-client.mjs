// Runs inside a stack's network namespace for auth.test.ts. As root with the
// per-service credentials it checks that the services' own subjects work and
// others are refused; with no credentials (run as nobody) it is the attacker.
// Prints one JSON line.
import { readFileSync } from "node:fs";
import { connect } from "@nats-io/transport-node";
import { codecs, subjects } from "@vigil/bus";
import { Verdict } from "@vigil/proto";

const [action, url, secrets] = process.argv.slice(2);
const out = (r) => process.stdout.write(JSON.stringify(r) + "\n");
const as = (user) => connect({ servers: [url], user, pass: readFileSync(`${secrets}/nats-${user}.password`, "utf8").trim(), reconnect: false, timeout: 3000 });
const errorsOf = (nc) => {
  const errors = [];
  void (async () => {
    for await (const s of nc.status()) if (s.type === "error") errors.push(String(s.error));
  })();
  return errors;
};

if (action === "services") {
  const pst = await as("pst");
  const console_ = await as("console");
  const errors = [...[]];
  const pstErrors = errorsOf(pst);
  const consoleErrors = errorsOf(console_);
  const events = [];
  const verdicts = [];
  console_.subscribe(subjects.ruleEvents, { callback: (_e, m) => events.push(JSON.stringify(codecs.ruleEvent.decode(m.data, m.subject))) });
  console_.subscribe(subjects.verdictsAll, { callback: (_e, m) => verdicts.push(codecs.verdict.decode(m.data, m.subject).address) });
  console_.subscribe(subjects.framesAll);
  await console_.flush();
  pst.publish(subjects.verdicts("som"), codecs.verdict.encode(Verdict.fromPartial({ id: "forged-1", detector: "som", address: "192.0.2.77", score: 9, threshold: 1 })));
  pst.publish(subjects.verdicts("pst"), codecs.verdict.encode(Verdict.fromPartial({ id: "pst-1", detector: "pst", address: "192.0.2.55", score: 9, threshold: 1 })));
  await pst.flush();
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && !events.some((e) => e.includes("192.0.2.55"))) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 300));
  out({ events, verdicts, errors: [...errors, ...pstErrors, ...consoleErrors] });
  await pst.close();
  await console_.close();
} else {
  // The attacker: no credentials (nobody cannot read them).
  let nc;
  try {
    nc = await connect({ servers: [url], reconnect: false, timeout: 3000 });
    if (action === "publish") nc.publish(subjects.verdicts("pst"), new TextEncoder().encode("forged"));
    else nc.subscribe(subjects.framesAll);
    await nc.flush();
    await nc.close();
    out({ ok: true });
  } catch (err) {
    out({ ok: false, error: err.message });
  }
}
