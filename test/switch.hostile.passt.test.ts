// Hostile and dying passt uplinks against a switch: a stand-in speaking passt's socket framing announces a bogus length,
// exits in the middle of a frame, or prints escape sequences; a real passt is killed mid-run. Each time the switch stays
// up, logs escaped text, removes passt's directory, and keeps serving a well-behaved pair.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Nic, Switch } from 'macslot';
import { serveSwitch, spawnPasst, type PasstPeer, type ServedSwitch } from 'macslot/node';
import { streamPairWorks } from './support/peer.js';
import { hostileStandIn } from './support/hostile.js';
import { needTool, until } from './support/frames.js';

const { dir, pids, standIn, killStandIns } = hostileStandIn('macslot-hostile-passt-', 'hostile-passt');
afterAll(() => {
  killStandIns();
  rmSync(dir, { recursive: true, force: true });
});

let served: ServedSwitch | undefined;
let passt: PasstPeer | undefined;
afterEach(async () => {
  await passt?.close();
  passt = undefined;
  await served?.close();
  served = undefined;
  killStandIns();
});

async function serve(logs: string[]) {
  process.env.HOSTILE_PID_DIR = pids;
  const nic = new Nic({ primary: '02:6d:73:00:00:01' });
  const sw = await Switch.create({ nic, allocation: 'random', log: (l) => logs.push(l) });
  const where = join(dir, `sw${readdirSync(dir).length}.sock`);
  served = await serveSwitch(sw, { listen: [{ kind: 'unix', path: where }], log: (l) => logs.push(l) });
  return { sw, where };
}

/** Starts the stand-in in `mode` as the switch's uplink. */
async function hostileUplink(sw: Switch, mode: string, logs: string[]): Promise<PasstPeer> {
  passt = await spawnPasst({ command: standIn, extraArgs: [`--hostile=${mode}`], log: (l) => logs.push(l), timeoutMs: 20_000 });
  sw.attachUplink(passt.port);
  return passt;
}

const ESC = /[\u0000-\u0008\u000a-\u001f\u007f]/;

describe('hostile passt uplinks (a stand-in speaking its socket framing)', () => {
  it('a bogus length closes the uplink, counted and logged; the switch keeps serving', async () => {
    const logs: string[] = [];
    const { sw, where } = await serve(logs);
    const p = await hostileUplink(sw, 'bogus-length', logs);
    await until(() => sw.counters().uplink === null, 10_000, 'the uplink to close');
    expect(logs.some((l) => l.startsWith(`${p.port.name}: dropped (invalid-length)`))).toBe(true);
    await streamPairWorks(sw, where);
  });

  it('a passt that exits in the middle of a frame: the uplink closes, the truncation is logged, its directory goes', async () => {
    const logs: string[] = [];
    const { sw, where } = await serve(logs);
    const p = await hostileUplink(sw, 'exit-mid-frame', logs);
    await until(() => sw.counters().uplink === null, 10_000, 'the uplink to close');
    await until(() => logs.some((l) => l.includes('dropped (truncated)')), 10_000, 'the truncation in the log');
    await p.close();
    expect(existsSync(dirname(p.socketPath))).toBe(false);
    await streamPairWorks(sw, where);
  });

  it('junk frames and escape sequences from passt: dropped, counted, and logged escaped', async () => {
    const logs: string[] = [];
    const { sw, where } = await serve(logs);
    const p = await hostileUplink(sw, 'garbage', logs);
    await until(() => Object.keys(sw.counters().uplink?.drops ?? {}).length > 0, 10_000, 'the junk to be counted');
    await until(() => logs.some((l) => l.includes('vm-a connected as')), 10_000, 'the stand-in’s stderr in the log');
    for (const l of logs) expect(l, l).not.toMatch(ESC);
    expect(logs.some((l) => l.includes('\\x1b[2J'))).toBe(true);
    expect(sw.counters().uplink).not.toBeNull();
    await streamPairWorks(sw, where);
    await p.close();
  });
});

describe('a real passt', () => {
  it('killed mid-run: the uplink closes and the switch keeps serving', async (ctx) => {
    if (!(await needTool('passt'))) return ctx.skip();
    const logs: string[] = [];
    const { sw, where } = await serve(logs);
    passt = await spawnPasst({ log: (l) => logs.push(l), timeoutMs: 20_000 });
    sw.attachUplink(passt.port);
    expect(passt.pid).toBeGreaterThan(0);
    process.kill(passt.pid!, 'SIGKILL');
    await until(() => sw.counters().uplink === null, 10_000, 'the uplink to close');
    await streamPairWorks(sw, where);
    await passt.close();
    expect(existsSync(dirname(passt.socketPath))).toBe(false);
  });
});
