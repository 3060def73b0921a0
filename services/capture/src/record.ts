import { existsSync, readFileSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { RecordCursor } from "@vigil/frames";
import { EXIT, parseCommandArgs, reportFatal, UserError, type Command } from "@vigil/lifecycle";
import { DEFAULT_KERNEL_DEVICE, LINKTYPE, openAfPacket, openKernelRing, PcapWriter, type PacketSource } from "@vigil/packet-sources";

// `vigil record`: the first step of training on the host's own traffic. The
// frames are read exactly as the capture service reads them (same addon, same
// snaplen from the IP header on), so the models learn what the detectors will see.

const USAGE = `usage: vigil record --out FILE (--seconds N | --frames N) [--interface IF | --kernel [--device PATH]]
                    [--snaplen N] [--filter BPF]

  --out FILE       the pcap to write (IP packets, LINKTYPE_RAW, nanosecond times); replaced if it exists
  --seconds N      stop after N seconds (Ctrl-C stops earlier and keeps what was recorded)
  --frames N       stop after N frames (whichever of the two comes first)
  --interface IF   record with AF_PACKET on IF (default: the kernel ring ${DEFAULT_KERNEL_DEVICE} when the module
                   is loaded, else the interface of the default route)
  --kernel         record from the kernel module's ring (--device: another ring device or file)
  --snaplen N      bytes kept from the IP header on (default 128, as capture.snaplen)
  --filter BPF     tcpdump filter syntax, e.g. "not port 22"

Then: vigil train pst --pcap FILE --out DIR --local <this host's addresses> (printed at the end), see the README.
exit codes: 0 recorded, 1 the source or the file failed, 2 bad arguments`;

/** The interface of the IPv4 default route, from /proc/net/route. */
function defaultRouteInterface(): string | null {
  try {
    for (const line of readFileSync("/proc/net/route", "utf8").split("\n").slice(1)) {
      const [iface, dest, , , , , , mask] = line.trim().split(/\s+/);
      if (dest === "00000000" && mask === "00000000") return iface;
    }
  } catch {
    /* no procfs */
  }
  return null;
}

/** The addresses of one interface, or of every interface but loopback: what `--local` should say when training. */
function localAddresses(iface: string | null): string[] {
  const out: string[] = [];
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (iface ? name !== iface : name === "lo") continue;
    for (const a of addrs ?? []) if (!a.address.startsWith("fe80:")) out.push(a.family === "IPv4" ? `${a.address}/32` : `${a.address}/128`);
  }
  return out;
}

function positive(name: string, v: string | undefined, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+(\.\d+)?$/.test(v) || !(n > 0) || n > max) throw new UserError(`vigil record: --${name} must be a number in (0, ${max}], got "${v}"`, "VIGIL_ERR_USAGE", EXIT.USAGE);
  return n;
}

export const recordCommand: Command = {
  name: "record",
  summary: "record this host's traffic to a pcap (AF_PACKET or the kernel ring), for `vigil train`",
  usage: USAGE,
  async run(args) {
    try {
      const v = parseCommandArgs(
        args,
        {
          out: { type: "string" },
          seconds: { type: "string" },
          frames: { type: "string" },
          interface: { type: "string", short: "i" },
          kernel: { type: "boolean" },
          device: { type: "string" },
          snaplen: { type: "string" },
          filter: { type: "string" },
        },
        { command: "record", usage: USAGE },
      );
      if (!v.out) throw new UserError(`vigil record: --out FILE is required\n${USAGE}`, "VIGIL_ERR_USAGE", EXIT.USAGE);
      const seconds = positive("seconds", v.seconds, 7 * 86400);
      const frames = positive("frames", v.frames, 2 ** 40);
      if (seconds === undefined && frames === undefined)
        throw new UserError("vigil record: say how much to record with --seconds N and/or --frames N", "VIGIL_ERR_USAGE", EXIT.USAGE);
      if (frames !== undefined && !Number.isInteger(frames)) throw new UserError(`vigil record: --frames must be an integer, got "${v.frames}"`, "VIGIL_ERR_USAGE", EXIT.USAGE);
      if (v.kernel && v.interface) throw new UserError("vigil record: --interface and --kernel exclude each other", "VIGIL_ERR_USAGE", EXIT.USAGE);
      const snaplen = positive("snaplen", v.snaplen, 65535) ?? 128;
      const useKernel = v.kernel || (!v.interface && existsSync(v.device ?? DEFAULT_KERNEL_DEVICE));
      const iface = useKernel ? null : (v.interface ?? defaultRouteInterface());
      if (!useKernel && !iface) throw new UserError(`vigil record: no ${DEFAULT_KERNEL_DEVICE} and no default route: name an interface with --interface`, "VIGIL_ERR_USAGE", EXIT.USAGE);

      const opts = { shardCount: 1, snaplen: Math.floor(snaplen), filter: v.filter, flushMs: 50 };
      const source: PacketSource = useKernel ? openKernelRing({ ...opts, device: v.device }) : openAfPacket(iface!, opts);
      let writer: PcapWriter;
      try {
        writer = new PcapWriter(v.out, LINKTYPE.RAW, Math.floor(snaplen));
      } catch (err) {
        await source.close();
        throw new UserError(`vigil record: cannot write ${v.out}: ${(err as Error).message}`, "VIGIL_ERR_PCAP_OPEN");
      }
      const what = useKernel ? `the kernel ring ${v.device ?? DEFAULT_KERNEL_DEVICE}` : `AF_PACKET on ${iface}`;
      process.stderr.write(`vigil record: recording ${what} into ${v.out} (${[seconds && `${seconds} s`, frames && `${frames} frames`].filter(Boolean).join(" or ")}, snaplen ${snaplen}; Ctrl-C stops)\n`);

      let why = "time is up";
      const stop = (reason: string) => {
        why = reason;
        source.end();
      };
      const timer = seconds ? setTimeout(() => stop(`${seconds} s recorded`), seconds * 1000) : null;
      const onSignal = (sig: NodeJS.Signals) => stop(`stopped by ${sig}`);
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
      const c = new RecordCursor();
      let written = 0;
      try {
        for await (const batch of source) {
          c.reset(batch.records);
          while (c.next()) {
            if (frames !== undefined && written >= frames) break;
            writer.write(c.tsNs, c.data(), Math.max(c.origLen, c.capLen));
            written++;
          }
          if (frames !== undefined && written >= frames) {
            why = `${frames} frames recorded`;
            break;
          }
        }
      } finally {
        if (timer) clearTimeout(timer);
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
        const stats = source.stats();
        await source.close();
        writer.close();
        const lost = (stats.ring_drops ?? 0) + (stats.queue_drops ?? 0);
        process.stderr.write(`vigil record: ${why}: ${written} frames in ${v.out}${lost ? `, ${lost} lost (the reader fell behind)` : ""}\n`);
      }
      const local = localAddresses(iface);
      process.stdout.write(
        `${v.out}: ${written} frames\nnext: vigil train pst --pcap ${v.out} --out DIR${local.length ? ` --local ${local.join(" --local ")}` : ""}\n`,
      );
      if (written === 0) process.stderr.write("vigil record: warning: no frame was recorded (is there traffic on the source? does the filter match?)\n");
      return EXIT.OK;
    } catch (err) {
      return reportFatal("vigil record", err);
    }
  },
};
