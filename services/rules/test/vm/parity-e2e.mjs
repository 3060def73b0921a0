// Runs inside the kernel module's VM (kmod/test/vm/run-vm.sh) after insmod: the same rule sets go through the
// rules service's kmod enforcer (the VM's own namespace) and its nftables enforcer (namespace "nL"), each facing a
// peer namespace with the same addresses, and the same UDP probes cross both. Prints one JSON line per rule set
// with the verdicts of each back end (security review F6: direction must mean the same to both; F29: so must
// priority).
import { execFileSync, spawn } from "node:child_process";
import { join } from "node:path";
import { Action, Direction, Rule } from "@vigil/proto";
import { KmodEnforcer } from "../../dist/enforcers/kmod.js";
import { NftablesEnforcer } from "../../dist/enforcers/nftables.js";
import { canonicalRule } from "../../dist/model.js";

const report = (k, v) => process.stdout.write(`${JSON.stringify({ k, v })}\n`);
const sh = (...args) => execFileSync(args[0], args.slice(1), { stdio: ["ignore", "pipe", "pipe"] }).toString();
const traffic = join(process.env.VIGIL_KMOD, "tools/vigil-traffic");
const LOCAL4 = "10.88.0.1";
const LOCAL6 = "fd88::1";

/** The protected side is `local` (null: the VM's own namespace), its peer `remote` holds .2, .3 and fd88::2. */
function topology(local, remote, ifname) {
  const inLocal = (...a) => (local ? sh("ip", "netns", "exec", local, ...a) : sh(...a));
  const inRemote = (...a) => sh("ip", "netns", "exec", remote, ...a);
  if (local) sh("ip", "netns", "add", local);
  sh("ip", "netns", "add", remote);
  inLocal("ip", "link", "set", "lo", "up");
  inLocal("ip", "link", "add", `${ifname}0`, "type", "veth", "peer", "name", `${ifname}1`);
  inLocal("ip", "link", "set", `${ifname}1`, "netns", remote);
  inLocal("ip", "addr", "add", `${LOCAL4}/24`, "dev", `${ifname}0`);
  inLocal("ip", "addr", "add", `${LOCAL6}/64`, "dev", `${ifname}0`, "nodad");
  inLocal("ip", "link", "set", `${ifname}0`, "up");
  for (const a of ["10.88.0.2/24", "10.88.0.3/24"]) inRemote("ip", "addr", "add", a, "dev", `${ifname}1`);
  inRemote("ip", "addr", "add", "fd88::2/64", "dev", `${ifname}1`, "nodad");
  inRemote("ip", "link", "set", `${ifname}1`, "up");
  inRemote("ip", "link", "set", "lo", "up");
  return { local, remote };
}

const inNs = (ns, args) => (ns ? ["ip", ["netns", "exec", ns, ...args]] : [args[0], args.slice(1)]);

/** Sends 3 datagrams from `from` (source port sport) to addr:dport in `to`; true when they arrived. */
function probe(from, to, addr, dport, sport) {
  return new Promise((resolve, reject) => {
    // veth delivers synchronously: once the sender is done, what was not dropped is queued at the receiver, which is
    // then told to stop waiting (no timeout to lose to a slow, shared, emulated host).
    const [cmd, argv] = inNs(to, [traffic, "udp-recv", String(dport), "3", "30000"]);
    const recv = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let sent = false;
    recv.stdout.on("data", (d) => {
      out += d;
      if (!sent && out.includes("ready")) {
        sent = true;
        const [c, a] = inNs(from, [traffic, "udp-send", addr, String(dport), "3", "64", String(sport)]);
        // An output drop fails the sender's sendto() (EPERM): that is a verdict, not an error.
        spawn(c, a, { stdio: "ignore" })
          .on("error", reject)
          .on("close", () => setTimeout(() => recv.kill("SIGTERM"), 300));
      }
    });
    recv.on("close", () => resolve(/received=3/.test(out)));
  });
}

// [name, direction, address, local port, remote port]: seen from the protected side.
const PROBES = [
  ["in .2 to our 5300", "in", "10.88.0.2", 5300, 40000],
  ["in .2 from its 5300", "in", "10.88.0.2", 6000, 5300],
  ["out to .2 from our 5300", "out", "10.88.0.2", 5300, 7000],
  ["out to .2 port 5300", "out", "10.88.0.2", 6000, 5300],
  ["out to .3", "out", "10.88.0.3", 6000, 7000],
  ["out to fd88::2", "out", "fd88::2", 6000, 7000],
  ["in fd88::2", "in", "fd88::2", 6000, 7000],
];

async function verdicts(side) {
  const out = {};
  for (const [name, dir, remoteAddr, lport, rport] of PROBES) {
    const v6 = remoteAddr.includes(":");
    const ok =
      dir === "in"
        ? await probe(side.remote, side.local, v6 ? LOCAL6 : LOCAL4, lport, rport)
        : await probe(side.local, side.remote, remoteAddr, rport, lport);
    out[name] = ok ? "pass" : "blocked";
  }
  return out;
}

const now = () => Date.now() / 1000;
const rule = (p) => canonicalRule(Rule.fromPartial({ action: Action.ACTION_DROP, createdAt: now(), expiresAt: now() + 3600, ...p })).rule;

const SETS = {
  "cidr both": [rule({ srcCidr: "10.88.0.2/31" })],
  "cidr out": [rule({ srcCidr: "10.88.0.0/24", direction: Direction.DIRECTION_EGRESS })],
  "port both": [rule({ srcCidr: "10.88.0.2/32", protocol: 17, dportMin: 5300, dportMax: 5300 })],
  "host out": [rule({ srcCidr: "10.88.0.3/32", direction: Direction.DIRECTION_EGRESS })],
  "allow in a blocked cidr": [rule({ srcCidr: "10.88.0.2/32", action: Action.ACTION_ACCEPT }), rule({ srcCidr: "10.88.0.0/24" })],
  "v6 cidr out": [rule({ srcCidr: "fd88::2/127", direction: Direction.DIRECTION_EGRESS })],
  // F29: one precedence. An address's allow beats a CIDR block whatever their priorities ...
  "allow under a first cidr drop": [rule({ srcCidr: "10.88.0.0/24", priority: 0 }), rule({ srcCidr: "10.88.0.2/32", action: Action.ACTION_ACCEPT, priority: 10 })],
  // ... a port allow beats a block of one address ...
  "port allow over a host drop": [
    rule({ srcCidr: "10.88.0.2/32", priority: 0 }),
    rule({ srcCidr: "10.88.0.0/24", protocol: 17, dportMin: 5300, dportMax: 5300, action: Action.ACTION_ACCEPT, priority: 100 }),
  ],
  // ... and one-direction host rules take their place by priority among the general rules.
  "one-direction allow before a cidr drop": [
    rule({ srcCidr: "10.88.0.2/32", action: Action.ACTION_ACCEPT, direction: Direction.DIRECTION_INGRESS, priority: 5 }),
    rule({ srcCidr: "10.88.0.0/24", priority: 10 }),
  ],
  "one-direction allow after a cidr drop": [
    rule({ srcCidr: "10.88.0.2/32", action: Action.ACTION_ACCEPT, direction: Direction.DIRECTION_INGRESS, priority: 10 }),
    rule({ srcCidr: "10.88.0.0/24", priority: 5 }),
  ],
};

try {
  for (const m of ["veth", "nf_tables"]) {
    try {
      sh("modprobe", m);
    } catch {
      /* built in */
    }
  }
  const kmodSide = topology(null, "kR", "k");
  const nftSide = topology("nL", "nR", "n");
  const kmod = new KmodEnforcer();
  const nft = new NftablesEnforcer({ netns: "nL" });
  await kmod.start();
  await nft.start();
  // The first probes run cold (9p page cache, first exec): one round unreported, so that the baseline is not a timeout.
  await verdicts(kmodSide);
  await verdicts(nftSide);
  report("baseline", { kmod: await verdicts(kmodSide), nftables: await verdicts(nftSide) });
  for (const [name, rules] of Object.entries(SETS)) {
    await kmod.reconcile(rules);
    await nft.reconcile(rules);
    report(name, { kmod: await verdicts(kmodSide), nftables: await verdicts(nftSide) });
  }
  await kmod.reconcile([]);
  await nft.reconcile([]);
  await kmod.close();
  report("done", true);
  process.exit(0);
} catch (err) {
  report("error", { message: err.message, errno: err.errno, extack: err.extack, stderr: err.stderr?.toString() });
  process.exit(1);
}
