// Generation at scale: a million MACs from the manager, all valid locally administered unicast, none colliding with the store, and a clear
// error when a block runs out.
import { describe, expect, it } from 'vitest';
import { MacManager, MacslotError, MemoryStore, Nic, type StoreData } from 'macslot';

const record = { guest: 'other', nic: 'eth0', iface: '0', policy: 'random', holder: 'elsewhere', expires: null, updated: 0 } as const;

describe('generation', () => {
  it('1,000,000 MACs are valid, locally administered unicast, distinct, and miss every MAC in the store', async () => {
    const N = 1_000_000;
    // A /26 block holds 2^22 MACs; the store already holds every 8th of its first 800,000, so a picker that ignored it would hit them.
    const store = new MemoryStore();
    const held = new Set<number>();
    await store.transact((d: StoreData) => {
      for (let i = 0; i < 800_000; i += 8) {
        const n = 0x0200_0000_0000 + i;
        held.add(n);
        const text = n
          .toString(16)
          .padStart(12, '0')
          .replace(/(..)(?!$)/g, '$1:');
        d.records[text] = { ...record };
      }
    });
    const m = new MacManager({ nics: new Nic({ primary: '00:14:4f:00:00:00' }), store, block: '02:00:00:00:00:00/26' });
    const macs = [...(await m.generate(N / 2, { policy: 'block' })), ...(await m.generate(N / 2, { policy: 'random' }))];
    expect(macs).toHaveLength(N);
    const seen = new Set<number>();
    let bad = 0;
    let hits = 0;
    for (const mac of macs) {
      if (!(mac.kind === 'mac48' && mac.isLocal && mac.isUnicast && !mac.isZero)) bad++;
      const n = mac.toNumber();
      if (held.has(n)) hits++;
      seen.add(n);
    }
    expect(bad).toBe(0);
    expect(hits).toBe(0);
    expect(seen.size).toBe(N);
    // The sequential half walked past the held MACs rather than around the whole block.
    expect(macs[0]!.toString()).toBe('02:00:00:00:00:01');
    expect(macs[7]!.toString()).toBe('02:00:00:00:00:09');
  }, 60_000);

  it('an exhausted block gives BLOCK_EXHAUSTED naming the block, for generate and allocate alike', async () => {
    const m = new MacManager({ nics: new Nic({ primary: '00:14:4f:00:00:00' }), block: { base: '02:08:20:00:00:00', count: 16 } });
    expect(await m.generate(16, { policy: 'block' })).toHaveLength(16);
    for (const order of ['next', 'random'] as const) {
      const err = await m.generate(17, { policy: 'block', order }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(MacslotError);
      expect((err as MacslotError).code).toBe('BLOCK_EXHAUSTED');
      expect((err as MacslotError).message).toContain('02:08:20:00:00:00..02:08:20:00:00:0f (16 MACs)');
    }
    await m.allocateMany(Array.from({ length: 16 }, (_, i) => ({ guest: 'g', iface: String(i), policy: 'block' as const })));
    const err = await m.allocate({ guest: 'h', policy: 'block' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as MacslotError).code).toBe('BLOCK_EXHAUSTED');
  });

  it('rejects a bad count or policy with INVALID_ARGUMENT naming it', async () => {
    const m = new MacManager({ nics: new Nic({ primary: '00:14:4f:00:00:00' }) });
    await expect(m.generate(-1)).rejects.toThrow(/INVALID_ARGUMENT.*-1/);
    await expect(m.generate(1, { policy: 'fixed' })).rejects.toThrow(/INVALID_ARGUMENT.*"fixed"/);
  });
});
