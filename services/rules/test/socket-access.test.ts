import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { restrictSocket } from "../src/socket-access.js";

/**
 * Who may connect to the control socket (F17): a real unix socket, groups from
 * a group file of the test's own. Changing a file's group to any gid needs root.
 */
const notRoot = process.getuid?.() === 0 ? null : "needs root (chown to another group)";

describe.skipIf(notRoot)("the control socket's group", () => {
  const dirs: string[] = [];
  const servers: Server[] = [];
  afterEach(() => {
    for (const s of servers.splice(0)) s.close();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  /** A listening socket in a directory of its own (0750, as systemd makes a RuntimeDirectory). */
  async function socketIn(): Promise<{ dir: string; sock: string }> {
    const dir = mkdtempSync(join(tmpdir(), "vigil-sock-"));
    dirs.push(dir);
    const run = join(dir, "run");
    mkdirSync(run);
    chmodSync(run, 0o750);
    const sock = join(run, "control.sock");
    const server = createServer();
    servers.push(server);
    await new Promise<void>((r) => server.listen(sock, r));
    return { dir: run, sock };
  }
  function groups(dir: string, lines: string[]): string {
    const file = join(dir, "..", "group");
    writeFileSync(file, lines.join("\n") + "\n");
    return file;
  }

  it("prefers vigil-control over the older installs' vigil, mode 0660", async () => {
    const { dir, sock } = await socketIn();
    restrictSocket(sock, undefined, { groupFile: groups(dir, ["vigil:x:4242:", "vigil-control:x:4243:alice"]), env: {} });
    expect([statSync(sock).gid, statSync(sock).mode & 0o777]).toEqual([4243, 0o660]);
    // Not its runtime directory: left as it was.
    expect(statSync(dir).gid).toBe(0);
  });

  it("falls back to vigil, and to the owner alone when neither group exists", async () => {
    const a = await socketIn();
    restrictSocket(a.sock, undefined, { groupFile: groups(a.dir, ["vigil:x:4242:"]), env: {} });
    expect(statSync(a.sock).gid).toBe(4242);
    const b = await socketIn();
    restrictSocket(b.sock, undefined, { groupFile: groups(b.dir, ["staff:x:50:"]), env: {} });
    expect([statSync(b.sock).gid, statSync(b.sock).mode & 0o777]).toEqual([0, 0o660]);
  });

  it("refuses a named group that does not exist, naming the key", async () => {
    const { dir, sock } = await socketIn();
    expect(() => restrictSocket(sock, "vigil-ctrl", { groupFile: groups(dir, ["vigil-control:x:4243:"]), env: {} })).toThrow(/rules\.grpc\.socketGroup: there is no group "vigil-ctrl"/);
  });

  it("gives the service's systemd runtime directory to the socket's group, 0750", async () => {
    const { dir, sock } = await socketIn();
    restrictSocket(sock, "vigil-control", { groupFile: groups(dir, ["vigil-control:x:4243:"]), env: { RUNTIME_DIRECTORY: dir } });
    expect([statSync(dir).gid, statSync(dir).mode & 0o777]).toEqual([4243, 0o750]);
    expect(statSync(sock).gid).toBe(4243);
  });
});
