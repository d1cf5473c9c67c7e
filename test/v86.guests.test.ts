// Two real v86 guests (ne2k, iPXE) on one NIC through attachV86: unicast reaches only its owner, broadcast reaches both, nothing echoes
// back.
import { afterAll, describe, expect, it } from 'vitest';
import type { V86 } from 'v86';
import { DataPlane, type Mac, Nic, attachV86, bindClient, memoryPortPair, type V86Attachment } from 'macslot';
import {
  DHCP,
  HAVE_GUEST,
  REQUIRED,
  bootIpxe,
  dst,
  isNeighbourAdvertisement,
  neighbourSolicitation,
  frame,
  parseDhcp,
  src,
  waitFor,
} from './fixtures/v86.js';

const suite = HAVE_GUEST || REQUIRED ? describe : describe.skip;
const emulators: V86[] = [];
afterAll(async () => {
  for (const e of emulators) await e.destroy();
});

suite('two v86 guests on one NIC', () => {
  it('keeps each guest to its own slot MAC: unicast to its owner only, broadcast to both, no echo', async () => {
    const nic = new Nic({ primary: '00:14:4f:00:00:00', factory: { base: '00:14:4f:00:00:01', count: 4 } });
    const dp = await DataPlane.create(nic);
    const a = nic.openClient('guest-a');
    const b = nic.openClient('guest-b');
    const probe = nic.openClient('probe');
    expect([a.addressReserve().slot, b.addressReserve().slot]).toEqual([1, 2]);
    const probeMac = probe.addressReserve().mac;
    const [probePort, probeEnd] = memoryPortPair('probe', 'probe-end');
    bindClient(dp, probe, probePort);
    const probeGot: Uint8Array[] = [];
    probeEnd.onFrame((f) => probeGot.push(f));

    // Every frame any client sends, with its sender: the ground truth the per-client counters are checked against.
    const wire: { from: number; frame: Uint8Array }[] = [];
    const inject = (f: Uint8Array): void => {
      wire.push({ from: probe.id, frame: f.slice() });
      expect(probeEnd.send(f)).toBe(true);
    };

    const guests: { client: typeof a; emulator: V86; port: V86Attachment; macs: Mac[] }[] = [];
    for (const client of [a, b]) {
      const emulator = bootIpxe('ne2k');
      emulators.push(emulator);
      // What the card transmits, copied before the card reuses its buffer.
      emulator.add_listener('net0-send', (f) => wire.push({ from: client.id, frame: f.slice() }));
      // Attached before the card exists, so its net0-mac announcement is what names the guest.
      const port = attachV86(emulator, client);
      bindClient(dp, client, port);
      const macs: Mac[] = [];
      port.on((e) => {
        if (e.type === 'mac') macs.push(e.mac);
      });
      guests.push({ client, emulator, port, macs });
    }
    const [ga, gb] = guests as [(typeof guests)[0], (typeof guests)[0]];

    // Deadlines for a busy machine: guests boot in emulation, several times slower when the cores are shared.
    await waitFor('both cards to announce their MACs', 30_000, () => (ga.macs.length > 0 && gb.macs.length > 0 ? true : undefined));
    const macA = ga.macs[0]!;
    const macB = gb.macs[0]!;
    // v86 picks 00:22:15:xx:xx:xx; the adapter makes it the client's active MAC in the slot the client reserved.
    expect(macA.oui).toBe('00:22:15');
    expect(macA.equals(macB)).toBe(false);
    expect(nic.addressGet(1)).toMatchObject({ owner: 'guest-a', active: true, kind: 'cloned' });
    expect(nic.addressGet(1).mac.equals(macA)).toBe(true);
    expect(nic.addressGet(2).mac.equals(macB)).toBe(true);
    expect([ga.port.slot, gb.port.slot]).toEqual([1, 2]);

    // The guests' own DHCPDISCOVERs: broadcasts from their cloned MACs, which the other guest must get.
    const discover = (m: Mac) => (): true | undefined =>
      wire.some((w) => parseDhcp(w.frame)?.type === DHCP.DISCOVER && src(w.frame) === m.toString()) ? true : undefined;
    await waitFor('a DHCPDISCOVER from each guest', 90_000, () => (discover(macA)() && discover(macB)() ? true : undefined));

    // Injected from the third client: unicast to each guest (plain frames and a neighbour solicitation its IPv6 stack answers), and
    // broadcasts.
    for (let i = 0; i < 3; i++) inject(frame(macA.toString(), probeMac.toString(), 60, 0xa0 + i));
    for (let i = 0; i < 2; i++) inject(frame(macB.toString(), probeMac.toString(), 60, 0xb0 + i));
    inject(neighbourSolicitation(probeMac, macA));
    inject(neighbourSolicitation(probeMac, macB));
    for (let i = 0; i < 2; i++) inject(frame('ff:ff:ff:ff:ff:ff', probeMac.toString(), 60, 0xc0 + i));

    // Each guest answers the solicitation sent to its own MAC, from its own MAC, to the probe only.
    const answers: Uint8Array[] = [];
    await waitFor('neighbour advertisements from both guests', 30_000, () => {
      answers.push(...probeGot.splice(0).filter(isNeighbourAdvertisement));
      const from = new Set(answers.map(src));
      return from.has(macA.toString()) && from.has(macB.toString()) ? true : undefined;
    });
    for (const na of answers) expect(dst(na)).toBe(probeMac.toString());

    for (const g of guests) await g.emulator.stop();

    const sent = (id: number) => wire.filter((w) => w.from === id).map((w) => w.frame);
    const bcast = (fs: Uint8Array[]) => fs.filter((f) => dst(f) === 'ff:ff:ff:ff:ff:ff').length;
    const to = (m: Mac) => wire.filter((w) => dst(w.frame) === m.toString()).length;
    for (const [me, other] of [
      [ga, gb],
      [gb, ga],
    ] as const) {
      const mine = me.macs[0]!;
      const c = dp.clientCounters(me.client.id);
      // Broadcast: exactly the other guest's and the probe's, never its own.
      expect(c.broadcast).toBe(bcast(sent(other.client.id)) + bcast(sent(probe.id)));
      expect(bcast(sent(me.client.id))).toBeGreaterThan(0);
      // Unicast: exactly the frames addressed to it (3 or 2 plain frames plus its solicitation), none of the other's.
      expect(c.frames - c.broadcast - c.multicast).toBe(to(mine));
      expect(to(mine)).toBe(me === ga ? 4 : 3);
      expect(c.multicast).toBe(0);
      expect(c.ringDrops).toBe(0);
      // Everything the NIC delivered went into the guest's card, and none of it carried the guest's own source.
      const pc = me.port.counters();
      expect(pc.toGuest.frames).toBe(c.frames);
      expect(pc.hostDrops.echo).toBe(0);
      expect(Object.values(pc.guestDrops).reduce((x, y) => x + y, 0)).toBe(0);
      expect(pc.fromGuest.frames).toBe(sent(me.client.id).length);
      expect(sent(me.client.id).every((f) => src(f) === mine.toString())).toBe(true);
    }
    // The probe heard the guests' answers, not their broadcasts' echoes of its own.
    const pcounters = dp.clientCounters(probe.id);
    expect(pcounters.broadcast).toBe(bcast(sent(a.id)) + bcast(sent(b.id)));

    for (const g of guests) g.port.close();
    // Closing gives each client its factory MAC back.
    expect(nic.addressGet(1).mac.toString()).toBe('00:14:4f:00:00:01');
    expect(nic.addressGet(2).mac.toString()).toBe('00:14:4f:00:00:02');
  }, 180_000);
});
