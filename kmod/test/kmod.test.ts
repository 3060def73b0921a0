// Kernel module tests: the userspace unit tests of match.c (ASan/UBSan) and
// the VM suite (Debian 12's 6.1 kernel under qemu TCG, test/vm/cases.sh),
// run once in beforeAll; each VM case is its own `it`, read from the
// "VIGIL-CASE <name> PASS|FAIL <ms> <detail>" lines the guest prints.
import { describe, it, expect, beforeAll } from 'vitest';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const kmod = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const CASES = [
  'load_unload',
  'capture_v4_udp',
  'capture_v6_udp',
  'capture_v4_icmp',
  'capture_v6_icmp',
  'capture_v4_tcp',
  'capture_v6_tcp',
  'capture_gso',
  'ring_poll',
  'full_ring',
  'rule_host',
  'rule_cidr',
  'rule_ports',
  'rule_proto',
  'rule_egress',
  'rule_priority',
  'rule_fragments',
  'rule_expiry',
  'host_replace',
  'rule_remote',
  'memcg_charge',
  'userns_limit',
  'priv_reads',
  'frag6_ports',
  'bulk_100k',
  'bulk_1m',
  'policy',
  'config',
  'netlink_fuzz',
  'unload_under_traffic',
  'slab_baseline',
];

interface RunResult {
  code: number | null;
  output: string;
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: kmod, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      output += `\n[kmod.test] ${cmd} killed after ${timeoutMs} ms\n`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: -1, output: output + String(err) });
    });
  });
}

let unit: RunResult;
let vm: RunResult;
const cases = new Map<string, { ok: boolean; ms: number; detail: string }>();

describe('vigil.ko', () => {
  beforeAll(async () => {
    unit = await run('make', ['-s', 'check'], 5 * 60_000);
    vm = await run('bash', ['test/vm/run-tests.sh'], 28 * 60_000);
    for (const line of vm.output.split('\n')) {
      const m = /^VIGIL-CASE (\S+) (PASS|FAIL) (\d+) ?(.*)$/.exec(line.trim());
      if (m) cases.set(m[1], { ok: m[2] === 'PASS', ms: Number(m[3]), detail: m[4] });
    }
    if (vm.code !== 0) {
      // Keep the guest's output where a developer will see it.
      console.log(vm.output.split('\n').slice(-120).join('\n'));
    }
  }, 30 * 60_000);

  it('unit tests of match.c pass under ASan/UBSan', () => {
    expect(unit.output).toMatch(/\d+ passed, 0 failed/);
    expect(unit.code, unit.output).toBe(0);
  });

  it('the VM boots and reports every case', () => {
    expect(vm.output, 'the VM suite did not report any case').toContain('VIGIL-CASE');
    const missing = CASES.filter((c) => !cases.has(c));
    expect(missing, vm.output.slice(-4000)).toEqual([]);
  });

  for (const name of CASES) {
    it(`vm: ${name}`, () => {
      const r = cases.get(name);
      expect(r, `case ${name} did not run`).toBeDefined();
      expect(r!.ok, `${name}: ${r!.detail}`).toBe(true);
    });
  }

  it('the VM suite exits 0', () => {
    expect(vm.code, vm.output.slice(-3000)).toBe(0);
  });
});
