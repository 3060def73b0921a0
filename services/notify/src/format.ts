import type { Notification } from "./notification.js";

/** Version of the generic webhook's JSON body; raised when a field changes meaning. */
export const WEBHOOK_PAYLOAD_VERSION = 1;

/** The generic webhook body: the notification as JSON, with its source and version. */
export function webhookBody(n: Notification): string {
  return JSON.stringify({ source: "vigil", version: WEBHOOK_PAYLOAD_VERSION, ...n });
}

/** A Slack-style incoming webhook body: one line of text. */
export function slackBody(n: Notification): string {
  return JSON.stringify({ text: n.text });
}

/** Header values cannot carry line breaks (header injection through a reason or comment). */
const oneLine = (s: string) => s.replace(/[\r\n]+/g, " ");

/** An RFC 5322 message for `sendmail -t`: recipients in the headers, the details as JSON below the text. */
export function emailMessage(n: Notification, opts: { from: string; to: string[]; subjectPrefix: string }): string {
  const subject = oneLine(`${opts.subjectPrefix ? `${opts.subjectPrefix} ` : ""}${n.text}`).slice(0, 200);
  const details = JSON.stringify({ ...n, text: undefined }, null, 2);
  return [
    `From: ${opts.from}`,
    `To: ${opts.to.join(", ")}`,
    `Subject: ${subject}`,
    `Date: ${new Date(n.ts * 1000).toUTCString()}`,
    "MIME-Version: 1.0",
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: 8bit",
    `X-Vigil-Kind: ${n.kind}`,
    "",
    n.text,
    "",
    details,
    "",
  ].join("\n");
}
