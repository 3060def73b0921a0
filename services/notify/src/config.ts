import { loadConfig, natsSchema, z, type LoadOptions } from "@vigil/config";

/** Default port of the notifier's /metrics and /healthz (after capture 9470 ... rules 9473). */
export const DEFAULT_NOTIFY_METRICS_PORT = 9474;

/** What can be notified: a block rule added, a block rule gone (expired or removed), feedback on a verdict. */
export const EVENT_KINDS = ["block", "unblock", "false-alarm", "confirmed"] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

const targetName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, "a name of letters, digits, '.', '_' or '-' (it labels the metrics)");

const httpUrl = z.string().superRefine((text, ctx) => {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    // Not the text itself: a webhook URL usually carries its token.
    ctx.addIssue({ code: "custom", message: "not a valid URL" });
    return;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") ctx.addIssue({ code: "custom", message: `must be http: or https:, not ${url.protocol}` });
});

const events = z.array(z.enum(EVENT_KINDS)).min(1);

const httpTarget = {
  name: targetName,
  /** The endpoint; its path and query often hold a token: it is never logged. */
  url: httpUrl,
  /** Extra request headers (e.g. Authorization); never logged. */
  headers: z.record(z.string(), z.string()).default({}),
  /** The events this target gets; default block, unblock and false-alarm. */
  events: events.optional(),
};

/** A generic JSON webhook: the whole notification as JSON (see services/notify/README.md). */
const webhookTarget = z.strictObject({ type: z.literal("webhook"), ...httpTarget });
/** A Slack-style incoming webhook (Slack, Mattermost, Rocket.Chat): `{"text": "..."}`. */
const slackTarget = z.strictObject({ type: z.literal("slack"), ...httpTarget });
/** E-mail through the local MTA: the message is piped to `sendmail -t -i`. */
const emailTarget = z.strictObject({
  type: z.literal("email"),
  name: targetName,
  to: z.array(z.string().regex(/^[^\s@<>,]+@[^\s@<>,]+$/, "an address like ops@example.org")).min(1),
  from: z.string().regex(/^[^\s@<>,]+@[^\s@<>,]+$/, "an address like vigil@example.org").default("vigil@localhost"),
  /** The MTA's sendmail-compatible program (postfix, exim, msmtp, nullmailer all provide one). */
  sendmail: z.string().min(1).default("/usr/sbin/sendmail"),
  subjectPrefix: z.string().default("[vigil]"),
  events: events.optional(),
});

export const targetSchema = z.discriminatedUnion("type", [webhookTarget, slackTarget, emailTarget]);
export type Target = z.infer<typeof targetSchema>;

/** The `notify` section of vigil.yaml (env: VIGIL_NOTIFY__<KEY>). */
export const notifySectionSchema = z
  .strictObject({
    /** Where notifications go: webhook (url, headers), slack (url) or email (to, from, sendmail) targets, each with a name and optional events; none: the notifier only counts events. */
    targets: z.array(targetSchema).default([]),
    /** Notifications waiting per target; beyond it they are dropped, counted and summarized in one later message. */
    queueSize: z.number().int().min(1).max(100_000).default(200),
    /** Attempts after the first failed one before a notification is dead-lettered. */
    retries: z.number().int().min(0).max(20).default(5),
    /** Wait before the first retry; doubled on each further one, up to maxBackoffMs. */
    backoffMs: z.number().int().min(1).max(600_000).default(1000),
    /** The longest wait between two attempts. */
    maxBackoffMs: z.number().int().min(1).max(3_600_000).default(60_000),
    /** One delivery attempt (HTTP request or sendmail run) may take this long. */
    timeoutMs: z.number().int().min(100).max(300_000).default(10_000),
    metrics: z
      .strictObject({
        host: z.string().default("127.0.0.1"),
        port: z.number().int().min(0).max(65535).default(DEFAULT_NOTIFY_METRICS_PORT),
      })
      .prefault({}),
  })
  .superRefine((c, ctx) => {
    const seen = new Set<string>();
    c.targets.forEach((t, i) => {
      if (seen.has(t.name)) ctx.addIssue({ code: "custom", path: ["targets", i, "name"], message: `two targets are named "${t.name}"` });
      seen.add(t.name);
    });
    if (c.maxBackoffMs < c.backoffMs) ctx.addIssue({ code: "custom", path: ["maxBackoffMs"], message: "must be at least backoffMs" });
  });

export const notifyConfigSchema = z.object({
  nats: natsSchema.prefault({}),
  notify: notifySectionSchema.prefault({}),
});

export type NotifyConfig = z.infer<typeof notifyConfigSchema>;
export type NotifySection = NotifyConfig["notify"];

/** The events a target gets when it does not list them. */
export const DEFAULT_EVENTS: readonly EventKind[] = ["block", "unblock", "false-alarm"];

export function loadNotifyConfig(opts: LoadOptions = {}): NotifyConfig {
  return loadConfig(notifyConfigSchema, opts);
}
