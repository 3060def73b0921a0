import { chmodSync, chownSync, readFileSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";

/** The gid of a group from /etc/group, or null when there is no such group. */
export function groupId(name: string, groupFile = "/etc/group"): number | null {
  let text: string;
  try {
    text = readFileSync(groupFile, "utf8");
  } catch {
    return null;
  }
  for (const line of text.split("\n")) {
    const [n, , gid] = line.split(":");
    if (n === name && gid && /^\d+$/.test(gid)) return Number(gid);
  }
  return null;
}

/**
 * The groups tried when rules.grpc.socketGroup is not set: an install's
 * `vigil-control` (the rules service, the console and the operators), else
 * `vigil`, which held the socket on installs before the services had users of
 * their own.
 */
export const DEFAULT_SOCKET_GROUPS = ["vigil-control", "vigil"];

/**
 * Only the owner and the socket's group may connect (0660), so that its
 * members reach the API while every other local user, a detector or capture
 * included, is refused by the kernel. When the socket lives in the runtime
 * directory systemd made for the service ($RUNTIME_DIRECTORY, owned by the
 * service's own group), that directory goes to the socket's group too, 0750:
 * members can reach the socket, nobody else can even look in.
 */
export function restrictSocket(path: string, group?: string, opts: { env?: NodeJS.ProcessEnv; groupFile?: string } = {}): void {
  const env = opts.env ?? process.env;
  chmodSync(path, 0o660);
  const names = group ? [group] : DEFAULT_SOCKET_GROUPS;
  const gid = names.map((n) => groupId(n, opts.groupFile)).find((g) => g !== null) ?? null;
  if (gid === null) {
    if (group) throw Object.assign(new Error(`rules.grpc.socketGroup: there is no group "${group}"`), { code: "VIGIL_ERR_CONFIG" });
    return;
  }
  chownSync(path, -1, gid);
  const dir = dirname(resolve(path));
  const runtime = env.RUNTIME_DIRECTORY?.split(":").map((d) => resolve(d));
  if (runtime?.includes(dir) && statSync(dir).uid === process.getuid?.()) {
    chownSync(dir, -1, gid);
    chmodSync(dir, 0o750);
  }
}
