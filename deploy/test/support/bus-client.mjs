// The services' side of the F2 checks, for auth.test.ts and up-auth.test.ts: with the
// per-service credentials from a stack's secrets directory, pst publishes a verdict of
// its own and one posing as som, and the console listens. Prints one JSON line: the rule
// events and verdicts the console saw and the permission errors the server sent back.
// (The anonymous attacker is attacker.mjs.)
import { readFileSync } from "node:fs";
import { connect } from "@nats-io/transport-node";
import { codecs, subjects } from "@vigil/bus";
import { Verdict } from "@vigil/proto";

const [url, secrets] = process.argv.slice(2);
const out = (r) => process.stdout.write(JSON.stringify(r) + "\n");
const as = (user) => connect({ servers: [url], user, pass: readFileSync(`${secrets}/nats-${user}.password`, "utf8").trim(), reconnect: false, timeout: 3000 });
const errorsOf = (nc) => {
  const errors = [];
  void (async () => {
    for await (const s of nc.status()) if (s.type === "error") errors.push(String(s.error));
  })();
  return errors;
};

const pst = await as("pst");
const console_ = await as("console");
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
// The server's permission errors arrive asynchronously: both (publish as som, subscribe to frames) or 3 s.
const violations = () => [...pstErrors, ...consoleErrors].filter((e) => /permissions violation/i.test(e)).length;
const errorsBy = Date.now() + 3000;
while (Date.now() < errorsBy && violations() < 2) await new Promise((r) => setTimeout(r, 50));
out({ events, verdicts, errors: [...pstErrors, ...consoleErrors] });
await pst.close();
await console_.close();
