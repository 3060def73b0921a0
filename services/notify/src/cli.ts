import { EXIT, parseCommandArgs, reportFatal, UserError, type Command } from "@vigil/lifecycle";
import { loadNotifyConfig } from "./config.js";
import { testNotification } from "./notification.js";
import { createSender } from "./send.js";

const USAGE = `usage: vigil notify test [--config FILE] [--target NAME]

  Sends one test notification to every target in the notify section of the
  configuration (or to the one named), once, without retries, and prints
  what each answered. Exit status 1 when one failed.`;

export const notifyTestCommand: Command = {
  name: "notify test",
  summary: "send a test notification to the configured webhooks and e-mail addresses",
  usage: USAGE,
  async run(args) {
    try {
      const values = parseCommandArgs(args, { config: { type: "string" }, target: { type: "string" } }, { command: "notify test", usage: USAGE });
      const cfg = loadNotifyConfig({ file: values.config });
      const targets = cfg.notify.targets.filter((t) => values.target === undefined || t.name === values.target);
      if (!targets.length)
        throw new UserError(
          values.target === undefined ? "no notification targets configured (notify.targets in vigil.yaml)" : `no notification target named "${values.target}"`,
          "VIGIL_ERR_CONFIG",
          EXIT.USAGE,
        );
      const n = testNotification();
      let failed = 0;
      for (const t of targets) {
        try {
          await createSender(t, cfg.notify.timeoutMs).send(n, new AbortController().signal);
          process.stdout.write(`${t.name} (${t.type}): delivered\n`);
        } catch (err) {
          failed++;
          process.stdout.write(`${t.name} (${t.type}): FAILED: ${(err as Error).message}\n`);
        }
      }
      return failed ? EXIT.FAILURE : EXIT.OK;
    } catch (err) {
      return reportFatal("vigil notify test", err);
    }
  },
};

export const commands: Command[] = [notifyTestCommand];
