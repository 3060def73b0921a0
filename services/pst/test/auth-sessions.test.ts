import { beforeAll, describe, expect, it } from "vitest";
import { DIR_INGRESS, RecordWriter } from "@vigil/frames";
import type { Verdict } from "@vigil/proto";
import { Detector } from "../src/detector.js";
import type { ModelSet } from "../src/model.js";
import type { Step } from "../src/synthetic.js";
import { A, F, P, S, syntheticModels, writeConversation } from "./support/models.js";

let models: ModelSet;
beforeAll(async () => {
  models = await syntheticModels();
}, 60_000);

const T0 = 1_700_000_000;
const GUESSER = "192.0.2.66";
const LOCAL = "10.0.0.2";

/** A login: the server's banner, `serverReplies` answers to the client's messages, the server closes. */
function login(serverReplies: number): Step[] {
  const steps: Step[] = [{ from: "c", flags: S }, { from: "s", flags: S | A }, { from: "c", flags: A }, { from: "s", flags: P | A, payload: 20 }];
  for (let i = 0; i < serverReplies; i++) steps.push({ from: "c", flags: P | A, payload: 12 }, { from: "s", flags: P | A, payload: 30 });
  steps.push({ from: "s", flags: F | A }, { from: "c", flags: F | A }, { from: "s", flags: A });
  return steps;
}

function run(sessions: number, port: number, serverReplies: number, gapS: number): Verdict[] {
  const verdicts: Verdict[] = [];
  const det = new Detector(models, { shardCount: 1, maxConnections: 10_000 }, { onVerdict: (v) => verdicts.push(v) });
  const w = new RecordWriter();
  for (let i = 0; i < sessions; i++)
    writeConversation(w, { client: GUESSER, server: LOCAL, clientPort: 41000 + i, serverPort: port, steps: login(serverReplies), startTs: T0 + i * gapS, gap: 0.01, clientDirection: DIR_INGRESS });
  det.processRecords(0, "test", w.bytes());
  det.endOfStream(0);
  return verdicts.filter((v) => v.model === "pst/auth-sessions@1");
}

describe("repeated short sessions to a login service", () => {
  it("30 failed FTP logins in 60 s make one brute-force verdict per 8 sessions, with the sessions as evidence", () => {
    const verdicts = run(30, 21, 3, 2);
    expect(verdicts).toHaveLength(3);
    const [v] = verdicts;
    expect(v).toMatchObject({ address: GUESSER, label: "brute-force", localAddress: LOCAL, localPorts: [21], connections: 8, score: 8, threshold: 8 });
    expect(v.pst!.connections).toHaveLength(8);
    expect(v.pst!.connections[0]!.symbols).toMatch(/^C:S S:SA C:A S:PA/);
    expect(v.summary).toContain("8 short sessions");
  });

  it("slow guessing (11 sessions in 70 s) is caught; fewer than 8 sessions in 120 s are not", () => {
    expect(run(11, 22, 3, 7)).toHaveLength(1);
    expect(run(7, 22, 3, 7)).toHaveLength(0);
    expect(run(11, 22, 3, 20)).toHaveLength(0);
  });

  it("sessions with output (a command, a listing) and sessions to other ports are not guessing", () => {
    expect(run(30, 22, 12, 1)).toHaveLength(0);
    expect(run(30, 8080, 3, 1)).toHaveLength(0);
  });
});
