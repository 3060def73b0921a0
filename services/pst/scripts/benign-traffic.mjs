#!/usr/bin/env node
// Benign TCP conversations for training the default PST models: real sockets, real kernel TCP.
//   node benign-traffic.mjs serve <addr4> <addr6> <certdir>    (in the server namespace)
//   node benign-traffic.mjs drive <addr4> <addr6> <seed> <n> <sshkey>   (in the client namespace)
// The client's choices come from a seeded PRNG, so a run makes the same conversations (timing aside).
import { createServer as httpServer, request as httpRequest, Agent as HttpAgent } from "node:http";
import { createServer as httpsServer, request as httpsRequest, Agent as HttpsAgent } from "node:https";
import { createServer as netServer, connect as netConnect } from "node:net";
import { readFileSync } from "node:fs";
import { spawn } from "node:child_process";

const [mode, addr4, addr6, arg3, arg4, arg5] = process.argv.slice(2);

function body(n) {
  return Buffer.alloc(n, 0x61);
}

function serve(certdir) {
  const handler = (req, res) => {
    const u = new URL(req.url, "http://x");
    const size = Number(u.searchParams.get("size") ?? 512);
    const close = u.searchParams.get("close") === "1";
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      res.writeHead(200, { "content-type": "text/plain", "content-length": size, ...(close ? { connection: "close" } : {}) });
      res.end(body(size));
    });
  };
  const tls = { key: readFileSync(`${certdir}/key.pem`), cert: readFileSync(`${certdir}/cert.pem`) };
  for (const host of [addr4, addr6]) {
    for (const port of [80, 8080]) httpServer({ keepAliveTimeout: 3000 }, handler).listen(port, host);
    for (const port of [443, 8443]) httpsServer({ ...tls, keepAliveTimeout: 3000 }, handler).listen(port, host);
    // DNS over TCP (RFC 7766): length-prefixed messages; answer each query with a fixed-size reply.
    netServer((s) => {
      let buf = Buffer.alloc(0);
      s.on("data", (d) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          const len = buf.readUInt16BE(0);
          buf = buf.subarray(2 + len);
          const reply = Buffer.alloc(2 + 120);
          reply.writeUInt16BE(120, 0);
          s.write(reply);
        }
      });
      s.on("error", () => {});
    }).listen(53, host);
    // FTP control dialogue (RFC 959 replies): banner, USER, PASS, a few commands, QUIT; the server closes.
    netServer((s) => {
      s.write("220 vigil lab FTP\r\n");
      let buf = "";
      s.on("data", (d) => {
        buf += d.toString();
        let i;
        while ((i = buf.indexOf("\r\n")) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const cmd = line.split(" ")[0].toUpperCase();
          if (cmd === "USER") s.write("331 Password required\r\n");
          else if (cmd === "PASS") s.write("230 Logged in\r\n");
          else if (cmd === "QUIT") s.end("221 Goodbye\r\n");
          else if (cmd === "LIST") s.write("150 Listing\r\n" + "-rw-r--r-- 1 ftp ftp 1234 file\r\n".repeat(20) + "226 Done\r\n");
          else s.write("200 OK\r\n");
        }
      });
      s.on("error", () => {});
    }).listen(21, host);
    // A request/response protocol on an unregistered port (key-value store style).
    for (const port of [6379, 9200]) {
      netServer((s) => {
        s.on("data", (d) => {
          const n = d.readUInt32BE(0) || 16;
          s.write(body(Math.min(n, 200000)));
        });
        s.on("error", () => {});
      }).listen(port, host);
    }
  }
  process.stdout.write("ready\n");
}

function prng(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function drive(seed, n, sshKey) {
  const rnd = prng(Number(seed));
  const pick = (arr) => arr[Math.floor(rnd() * arr.length)];
  const size = () => pick([0, 64, 300, 1200, 4000, 16000, 60000, 250000]);
  const hostOf = () => (rnd() < 0.3 ? addr6 : addr4);
  const fmt = (h) => (h.includes(":") ? `[${h}]` : h);

  async function web(tls) {
    const host = hostOf();
    const port = tls ? pick([443, 443, 443, 8443]) : pick([80, 80, 80, 8080]);
    const agent = tls ? new HttpsAgent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false }) : new HttpAgent({ keepAlive: true, maxSockets: 1 });
    const requests = 1 + Math.floor(rnd() * 4);
    const abort = rnd() < 0.04;
    const serverClose = rnd() < 0.3;
    for (let i = 0; i < requests; i++) {
      const close = serverClose && i === requests - 1 ? 1 : 0;
      const post = rnd() < 0.2;
      await new Promise((resolve) => {
        const req = (tls ? httpsRequest : httpRequest)(
          { host, port, path: `/x?size=${size()}&close=${close}`, method: post ? "POST" : "GET", agent, rejectUnauthorized: false },
          (res) => {
            if (abort && i === requests - 1) {
              res.once("data", () => {
                req.destroy();
                resolve();
              });
              res.on("end", () => resolve());
              res.on("error", () => resolve());
              return;
            }
            res.resume();
            res.on("end", resolve);
            res.on("error", resolve);
          },
        );
        req.on("error", () => resolve());
        req.end(post ? body(Math.floor(rnd() * 3000)) : undefined);
      });
      await sleep(rnd() * 200);
    }
    await sleep(rnd() * 500);
    agent.destroy();
  }

  function lineSession(port, lines, serverCloses) {
    return new Promise((resolve) => {
      const s = netConnect({ host: hostOf(), port });
      let i = 0;
      s.on("data", (d) => {
        if (d.toString().startsWith("221")) return;
        if (i < lines.length) setTimeout(() => s.write(lines[i++] + "\r\n"), rnd() * 100);
        else if (!serverCloses) s.end();
      });
      s.on("close", resolve);
      s.on("error", resolve);
    });
  }

  function dns() {
    return new Promise((resolve) => {
      const s = netConnect({ host: hostOf(), port: 53 });
      const queries = 1 + Math.floor(rnd() * 3);
      let answered = 0;
      const q = () => {
        const m = Buffer.alloc(2 + 40);
        m.writeUInt16BE(40, 0);
        s.write(m);
      };
      s.on("connect", q);
      s.on("data", () => {
        if (++answered < queries) q();
        else s.end();
      });
      s.on("close", resolve);
      s.on("error", resolve);
    });
  }

  function kv() {
    return new Promise((resolve) => {
      const s = netConnect({ host: hostOf(), port: pick([6379, 9200]) });
      let rounds = 1 + Math.floor(rnd() * 6);
      let want = 0;
      let got = 0;
      const ask = () => {
        want = pick([16, 100, 2000, 30000]);
        got = 0;
        const m = Buffer.alloc(4);
        m.writeUInt32BE(want, 0);
        s.write(m);
      };
      s.on("connect", ask);
      s.on("data", (d) => {
        got += d.length;
        if (got < want) return;
        if (--rounds > 0) setTimeout(ask, rnd() * 50);
        else s.end();
      });
      s.on("close", resolve);
      s.on("error", resolve);
    });
  }

  function refused() {
    return new Promise((resolve) => {
      const s = netConnect({ host: hostOf(), port: pick([81, 8081, 3000, 5000]) });
      s.on("error", resolve);
      s.on("close", resolve);
    });
  }

  function ssh() {
    return new Promise((resolve) => {
      const badKey = rnd() < 0.03;
      const cmd = pick(["true", "uname -a", "ls /etc", "head -c 20000 /dev/zero | base64", "cat /etc/services"]);
      const p = spawn(
        "ssh",
        [
          "-n",
          "-i",
          badKey ? `${sshKey}.wrong` : sshKey,
          "-o", "StrictHostKeyChecking=no",
          "-o", "UserKnownHostsFile=/dev/null",
          "-o", "BatchMode=yes",
          "-o", "LogLevel=ERROR",
          `root@${hostOf()}`,
          cmd,
        ],
        { stdio: "ignore" },
      );
      p.on("exit", resolve);
      p.on("error", resolve);
    });
  }

  const kinds = [
    [0.34, () => web(false)],
    [0.3, () => web(true)],
    [0.1, () => dns()],
    [0.06, () => lineSession(21, ["USER anonymous", "PASS guest@", "PWD", "TYPE I", "LIST", "QUIT"], true)],
    [0.1, () => kv()],
    [0.09, () => ssh()],
    [0.01, () => refused()],
  ];
  const choose = () => {
    let r = rnd();
    for (const [p, f] of kinds) {
      if (r < p) return f;
      r -= p;
    }
    return kinds[0][1];
  };
  const jobs = Array.from({ length: Number(n) }, () => choose());
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const job = jobs[next++];
      // A conversation that hangs must not stall the recording.
      let timer;
      await Promise.race([job(), new Promise((r) => (timer = setTimeout(r, 20000)))]);
      clearTimeout(timer);
    }
  };
  await Promise.all(Array.from({ length: 6 }, worker));
  process.exit(0);
}

if (mode === "serve") serve(arg3);
else if (mode === "drive") await drive(arg3, arg4, arg5);
else {
  process.stderr.write("usage: benign-traffic.mjs serve|drive ...\n");
  process.exit(2);
}
