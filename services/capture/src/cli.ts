import { parseArgs } from "node:util";
import { connect } from "@nats-io/transport-node";
import { createLogger, EXIT, reportFatal, UserError, type Command } from "@vigil/lifecycle";
import { createRegistry, serveMetrics, type MetricsServer } from "@vigil/metrics";
import { startCapture, type CaptureSummary } from "./capture.js";
import { loadCaptureConfig } from "./config.js";
import { CaptureMetrics } from "./metrics.js";
import { recordCommand } from "./record.js";

const USAGE = `usage: vigil capture (--pcap FILE [--speed N] | --interface IF [--fanout GROUP] | --kernel [--device PATH])
                     [--local CIDR,...] [--filter BPF] [--nats URL] [--shards N] [--snaplen N]
                     [--batch-bytes N] [--flush-ms N] [--source-id ID] [--metrics-port N] [--config FILE] [--json]

  --pcap FILE        replay a pcap or pcapng file, then publish end-of-stream on every shard
  --speed N          0 as fast as possible (default), 1 recorded pace, 10 ten times faster
  --interface IF     capture live with AF_PACKET (needs root / CAP_NET_RAW)
  --fanout GROUP     join PACKET_FANOUT group GROUP (share the interface with other captures)
  --kernel           drain the vigil kernel module's rings (/dev/vigil)
  --local CIDR,...   local networks: frames from files get a direction (dst local: ingress)
  --filter BPF       tcpdump filter syntax
  --nats URL         NATS server (default from the config, nats://127.0.0.1:4222)
  --json             print the summary as JSON on stdout`;

function intFlag(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UserError(`--${name} must be a non-negative integer, got "${v}"`, "VIGIL_ERR_USAGE", EXIT.USAGE);
  return Number(v);
}

function numFlag(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n) || n < 0) throw new UserError(`--${name} must be a number >= 0, got "${v}"`, "VIGIL_ERR_USAGE", EXIT.USAGE);
  return n;
}

function describe(s: CaptureSummary): string {
  const shards = s.framesPerShard.filter((n) => n > 0).length;
  const parts = [`${s.framesPublished} frames published in ${s.batchesPublished} batches on ${shards} of ${s.framesPerShard.length} shards`];
  if (s.framesDropped) parts.push(`${s.framesDropped} dropped`);
  if (s.ringDrops) parts.push(`${s.ringDrops} lost in the ring`);
  const skipped = (s.native.skipped_non_ip ?? 0) + (s.native.skipped_malformed ?? 0);
  if (skipped) parts.push(`${skipped} non-IP or malformed skipped`);
  if (s.native.filtered_out) parts.push(`${s.native.filtered_out} filtered out`);
  if (s.kind === "pcap") parts.push(s.endOfStream ? "end-of-stream sent" : "end-of-stream NOT sent");
  return `capture ${s.sourceId}: ${parts.join(", ")} (${(s.wallMs / 1000).toFixed(2)} s)`;
}

export const captureCommand: Command = {
  name: "capture",
  summary: "capture packets (pcap replay, AF_PACKET or the kernel ring) and publish frame batches to NATS",
  usage: USAGE,
  async run(args) {
    let values;
    try {
      ({ values } = parseArgs({
        args,
        options: {
          pcap: { type: "string" },
          speed: { type: "string" },
          interface: { type: "string", short: "i" },
          fanout: { type: "string" },
          kernel: { type: "boolean" },
          device: { type: "string" },
          local: { type: "string", multiple: true },
          filter: { type: "string" },
          nats: { type: "string" },
          shards: { type: "string" },
          snaplen: { type: "string" },
          "batch-bytes": { type: "string" },
          "flush-ms": { type: "string" },
          "source-id": { type: "string" },
          "metrics-port": { type: "string" },
          config: { type: "string" },
          json: { type: "boolean" },
        },
      }));
    } catch (err) {
      process.stderr.write(`vigil capture: ${(err as Error).message}\n${USAGE}\n`);
      return EXIT.USAGE;
    }
    const chosen = [values.pcap !== undefined, values.interface !== undefined, values.kernel === true].filter(Boolean).length;
    if (chosen > 1) {
      process.stderr.write("vigil capture: choose one source: --pcap, --interface or --kernel\n");
      return EXIT.USAGE;
    }
    const log = createLogger("capture", process.env.VIGIL_LOG_LEVEL ?? "warn");
    let metricsServer: MetricsServer | null = null;
    try {
      const overrides: Record<string, unknown> = {};
      if (values.pcap !== undefined) Object.assign(overrides, { "capture.source": "pcap", "capture.file": values.pcap });
      if (values.interface !== undefined) Object.assign(overrides, { "capture.source": "afpacket", "capture.interface": values.interface });
      if (values.kernel) overrides["capture.source"] = "kernel";
      if (values.device !== undefined) overrides["capture.device"] = values.device;
      const speed = numFlag("speed", values.speed);
      if (speed !== undefined) overrides["capture.speed"] = speed;
      const fanout = intFlag("fanout", values.fanout);
      if (fanout !== undefined) overrides["capture.fanoutGroup"] = fanout;
      if (values.local) overrides["capture.local"] = values.local.flatMap((v) => v.split(",")).map((s) => s.trim()).filter(Boolean);
      if (values.filter !== undefined) overrides["capture.filter"] = values.filter;
      for (const [flag, key] of [
        ["shards", "shardCount"],
        ["snaplen", "snaplen"],
        ["batch-bytes", "batchBytes"],
        ["flush-ms", "flushMs"],
      ] as const) {
        const v = intFlag(flag, values[flag]);
        if (v !== undefined) overrides[`capture.${key}`] = v;
      }
      if (values["source-id"] !== undefined) overrides["capture.sourceId"] = values["source-id"];
      if (values.nats !== undefined) overrides["nats.servers"] = [values.nats];
      const cfg = loadCaptureConfig({ file: values.config, overrides });
      const c = cfg.capture;
      const registry = createRegistry("capture");
      const metrics = new CaptureMetrics(registry);
      const metricsPort = intFlag("metrics-port", values["metrics-port"]);
      if (metricsPort !== undefined) metricsServer = await serveMetrics(registry, { host: c.metrics.host, port: metricsPort });
      // Fail fast when NATS is not there at all (a command, not a daemon), but once
      // connected ride out restarts like the daemon does.
      const nc = await connect({
        servers: cfg.nats.servers,
        name: "vigil-capture-cli",
        token: cfg.nats.token,
        reconnect: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        reconnectJitter: 250,
        waitOnFirstConnect: false,
        timeout: 5000,
      }).catch((err: Error) => {
        throw new UserError(`cannot reach NATS at ${cfg.nats.servers.join(", ")}: ${err.message}`, "VIGIL_ERR_BUS", EXIT.UNAVAILABLE);
      });
      try {
        const handle = startCapture({ ...c, nc, metrics, logger: log, heartbeatMs: c.heartbeatMs, metricsPort: metricsServer?.port });
        const onSignal = () => void handle.stop();
        process.once("SIGINT", onSignal);
        process.once("SIGTERM", onSignal);
        let summary: CaptureSummary;
        try {
          summary = await handle.done;
        } catch (err) {
          const s = handle.summary();
          process.stderr.write(`${describe(s)}\n`);
          throw err;
        } finally {
          process.off("SIGINT", onSignal);
          process.off("SIGTERM", onSignal);
        }
        if (values.json) process.stdout.write(`${JSON.stringify({ ...summary, native: summary.native })}\n`);
        else process.stderr.write(`${describe(summary)}\n`);
        return EXIT.OK;
      } finally {
        if (!nc.isClosed()) await nc.drain().catch(() => undefined);
      }
    } catch (err) {
      return reportFatal("vigil capture", err);
    } finally {
      await metricsServer?.close();
    }
  },
};

export const commands: Command[] = [captureCommand, recordCommand];
