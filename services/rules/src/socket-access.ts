import { chmodSync, chownSync, readFileSync } from "node:fs";

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
 * Only the owner and the socket's group may connect (0660): the group is
 * `vigil` when it exists, so that its members (the console, operators) reach
 * the API while every other local user is refused by the kernel.
 */
export function restrictSocket(path: string, group?: string): void {
  chmodSync(path, 0o660);
  const name = group ?? "vigil";
  const gid = groupId(name);
  if (gid === null) {
    if (group) throw Object.assign(new Error(`rules.grpc.socketGroup: there is no group "${group}"`), { code: "VIGIL_ERR_CONFIG" });
    return;
  }
  chownSync(path, -1, gid);
}
