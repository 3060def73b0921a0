import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** The services that talk to NATS, each with a user of its own. */
export const NATS_SERVICES = ["capture", "pst", "som", "rules", "console", "notify"] as const;
export type NatsService = (typeof NATS_SERVICES)[number];

export interface SubjectPermissions {
  publish: string[];
  subscribe: string[];
  /** May answer requests (a detector's model replies) without publish rights on every inbox. */
  allowResponses?: boolean;
}

/** Replies to requests and JetStream API calls come back on inboxes. */
const INBOX = "_INBOX.>";

function detector(name: string): SubjectPermissions {
  return {
    publish: [`vigil.verdicts.${name}`, `vigil.scores.${name}`, `vigil.heartbeat.${name}`, `vigil.eos.${name}`],
    subscribe: ["vigil.frames.*", "vigil.feedback", `vigil.heartbeat.${name}`, `vigil.models.${name}`, INBOX],
    allowResponses: true,
  };
}

/** The JetStream API and KV subjects of one bucket: only the rules service may use them. */
export function kvSubjects(bucket: string): string[] {
  const stream = `KV_${bucket}`;
  return [
    "$JS.API.INFO",
    `$JS.API.STREAM.*.${stream}`,
    `$JS.API.STREAM.MSG.GET.${stream}`,
    `$JS.API.CONSUMER.*.${stream}`,
    `$JS.API.CONSUMER.*.${stream}.>`,
    `$JS.API.CONSUMER.MSG.NEXT.${stream}.>`,
    `$JS.API.DIRECT.GET.${stream}`,
    `$JS.API.DIRECT.GET.${stream}.>`,
    `$JS.ACK.${stream}.>`,
    `$JS.FC.${stream}.>`,
    `$KV.${bucket}.>`,
  ];
}

/**
 * What each service may publish and subscribe to. Capture alone publishes
 * frames, each detector only its own verdicts, scores, heartbeats and ends of
 * stream; only rules touches the rules bucket and sends feedback; the console
 * reads (never frames) and asks detectors for their models; the notifier only
 * listens to rule events and feedback.
 */
export function natsPermissions(service: NatsService, bucket = "vigil_rules"): SubjectPermissions {
  switch (service) {
    case "capture":
      return { publish: ["vigil.frames.*", "vigil.heartbeat.capture", "vigil.eos.capture"], subscribe: ["vigil.heartbeat.capture", INBOX] };
    case "pst":
    case "som":
      return detector(service);
    case "rules":
      return {
        publish: ["vigil.events.rules", "vigil.feedback", "vigil.heartbeat.rules", "vigil.eos.rules", ...kvSubjects(bucket)],
        subscribe: ["vigil.verdicts.>", "vigil.heartbeat.>", "vigil.eos.>", `$KV.${bucket}.>`, INBOX],
      };
    case "console":
      return {
        publish: ["vigil.models.*", "vigil.heartbeat.console"],
        subscribe: ["vigil.verdicts.>", "vigil.events.rules", "vigil.heartbeat.>", "vigil.scores.>", "vigil.eos.>", INBOX],
      };
    case "notify":
      return { publish: ["vigil.heartbeat.notify"], subscribe: ["vigil.events.rules", "vigil.feedback", INBOX] };
  }
}

/** The hub user the leaf node of a detector host connects as (docs/operations.md, "Scaling out"). */
export const LEAF_USER = "detectors";

/**
 * A leaf connection takes the permissions of the user it authenticates as:
 * what it may publish is all it can send to the hub, what it may subscribe to
 * all it receives. A detector host parses hostile traffic: it gets exactly
 * what the detectors use, never the JetStream API, the rules bucket, feedback
 * or another service's verdicts.
 */
export function leafPermissions(): SubjectPermissions {
  const p = ["pst", "som"].map(detector);
  return { publish: p.flatMap((x) => x.publish), subscribe: [...new Set(p.flatMap((x) => x.subscribe))], allowResponses: true };
}

export interface NatsCredential {
  user: string;
  password: string;
  /** Holds the password, mode 0600. */
  passwordFile: string;
}

export interface NatsAuth {
  /** The nats-server configuration with the users and their permissions (mode 0600). */
  configFile: string;
  credentials: Record<NatsService, NatsCredential>;
  /** The user detector hosts' leaf nodes connect to the hub as. */
  leaf: NatsCredential;
  /** The variables that make a service connect as its user (the password stays in its file). */
  env(service: NatsService): Record<string, string>;
}

const quote = (s: string) => JSON.stringify(s);

function renderUser(c: NatsCredential, p: SubjectPermissions): string {
  const list = (xs: string[]) => `[${xs.map(quote).join(", ")}]`;
  return [
    `    { user: ${quote(c.user)}, password: ${quote(c.password)}, permissions: {`,
    `        publish: { allow: ${list(p.publish)} }`,
    `        subscribe: { allow: ${list(p.subscribe)} }`,
    ...(p.allowResponses ? ["        allow_responses: true"] : []),
    `    } }`,
  ].join("\n");
}

function writeSecret(file: string, text: string): void {
  writeFileSync(file, text, { mode: 0o600 });
  chmodSync(file, 0o600);
}

/** The password in the file, else a new one written there (0600): an install keeps its credentials across restarts. */
function passwordIn(file: string): string {
  if (existsSync(file)) {
    const p = readFileSync(file, "utf8").trim();
    if (p) return p;
  }
  const p = randomBytes(24).toString("base64url");
  writeSecret(file, p + "\n");
  return p;
}

/**
 * Per-service NATS users for one install or test stack: a password file per
 * service in `dir` (0700) and the nats-server authorization that grants each
 * user only its subjects. Nothing is printed.
 */
export function createNatsAuth(dir: string, opts: { bucket?: string } = {}): NatsAuth {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const credentials = {} as Record<NatsService, NatsCredential>;
  for (const s of NATS_SERVICES) {
    const passwordFile = join(dir, `nats-${s}.password`);
    credentials[s] = { user: s, password: passwordIn(passwordFile), passwordFile };
  }
  const leafFile = join(dir, `nats-${LEAF_USER}.password`);
  const leaf = { user: LEAF_USER, password: passwordIn(leafFile), passwordFile: leafFile };
  const configFile = join(dir, "nats-users.conf");
  const users = [...NATS_SERVICES.map((s) => renderUser(credentials[s], natsPermissions(s, opts.bucket))), renderUser(leaf, leafPermissions())];
  writeSecret(configFile, `# Generated by Vigil: one user per service, each limited to its subjects.\nauthorization {\n  users = [\n${users.join("\n")}\n  ]\n}\n`);
  return {
    configFile,
    credentials,
    leaf,
    env: (s) => ({ VIGIL_NATS__USER: credentials[s].user, VIGIL_NATS__PASSWORD_FILE: credentials[s].passwordFile }),
  };
}
