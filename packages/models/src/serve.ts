import { subjects, type NatsConnection } from "@vigil/bus";

/** Answers requests on vigil.models.<detector> with the model's JSON export. */
export function serveModelExport(nc: NatsConnection, detector: string, exportJson: () => unknown): { unsubscribe(): void } {
  return nc.subscribe(subjects.models(detector), {
    callback: (err, msg) => {
      if (err || !msg.reply) return;
      try {
        msg.respond(JSON.stringify(exportJson()));
      } catch (e) {
        msg.respond(JSON.stringify({ error: (e as Error).message }));
      }
    },
  });
}
