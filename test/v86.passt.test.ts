// A real v86 guest (ne2k, iPXE) attached with attachV86 gets a DHCP lease from a real passt, which is the NIC's uplink.
import { execFileSync } from 'node:child_process';
import { networkInterfaces } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import type { V86 } from 'v86';
import { DataPlane, Nic, attachV86, bindClient, bindUplink, type FramePort } from 'macslot';
import { spawnPasst, type PasstPeer } from 'macslot/node';
import { DHCP, HAVE_GUEST, REQUIRED, bootIpxe, dst, parseDhcp, progress, src, waitFor, type Dhcp } from './fixtures/v86.js';

const havePasst = ((): boolean => {
  try {
    execFileSync('passt', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const suite = (HAVE_GUEST && havePasst) || REQUIRED ? describe : describe.skip;

let emulator: V86 | undefined;
let passt: PasstPeer | undefined;
afterAll(async () => {
  await emulator?.destroy();
  await passt?.close();
});

/** Forwards both ways and keeps a copy of what the peer sent. */
function recording(port: FramePort, heard: Uint8Array[]): FramePort {
  return {
    name: port.name,
    send: (f) => port.send(f),
    onFrame: (receiver) =>
      port.onFrame((f) => {
        heard.push(f.slice());
        receiver(f);
        // A frame from passt may be what a waitFor is waiting for: check again.
        progress();
      }),
    onClose: (l) => port.onClose(l),
    close: () => port.close(),
  };
}

suite('a v86 guest behind the NIC, with passt as the uplink', () => {
  it('gets a DHCP lease: DISCOVER, OFFER, a REQUEST for the offered address, ACK', async () => {
    expect(havePasst, 'passt is required here (apt-get install --no-install-recommends passt)').toBe(true);
    const nic = new Nic({ primary: '00:14:4f:00:00:00', factory: { base: '00:14:4f:00:00:01', count: 2 } });
    const dp = await DataPlane.create(nic);
    const vm = nic.openClient('vm');
    const { slot } = vm.addressReserve();
    const fromPasst: Uint8Array[] = [];
    const log: string[] = [];
    passt = await spawnPasst({ log: (l) => log.push(l) });
    bindUplink(dp, recording(passt.port, fromPasst));

    const fromGuest: Uint8Array[] = [];
    emulator = bootIpxe('ne2k');
    emulator.add_listener('net0-send', (f) => fromGuest.push(f.slice()));
    const port = attachV86(emulator, vm);
    bindClient(dp, vm, port);

    const dhcp = (frames: Uint8Array[], type: number): (Dhcp & { frame: Uint8Array }) | undefined => {
      for (const frame of frames) {
        const d = parseDhcp(frame);
        if (d?.type === type) return { ...d, frame };
      }
      return undefined;
    };
    const ack = await waitFor(`passt's DHCPACK (passt said: ${log.join(' | ')})`, 90_000, () => dhcp(fromPasst, DHCP.ACK));
    const mac = port.guestMac!.toString();
    expect(port.guestMac!.oui).toBe('00:22:15');
    expect(nic.addressGet(slot)).toMatchObject({ kind: 'cloned', owner: 'vm' });
    expect(nic.addressGet(slot).mac.toString()).toBe(mac);

    const discover = dhcp(fromGuest, DHCP.DISCOVER)!;
    const offer = dhcp(fromPasst, DHCP.OFFER)!;
    const request = dhcp(fromGuest, DHCP.REQUEST)!;
    expect(discover).toMatchObject({ chaddr: mac });
    expect(src(discover.frame)).toBe(mac);
    // passt answered the guest's MAC, and the REQUEST that followed shows the OFFER reached the guest through the NIC.
    expect(offer).toMatchObject({ chaddr: mac, xid: discover.xid });
    expect([mac, 'ff:ff:ff:ff:ff:ff']).toContain(dst(offer.frame));
    expect(request).toMatchObject({ chaddr: mac, requested: offer.yiaddr, server: offer.server });
    expect(ack).toMatchObject({ chaddr: mac, yiaddr: offer.yiaddr, xid: request.xid });
    // passt leases the host's own address on its template interface.
    const hostAddresses = Object.values(networkInterfaces()).flatMap((l) =>
      (l ?? []).filter((a) => a.family === 'IPv4').map((a) => a.address),
    );
    expect(hostAddresses).toContain(offer.yiaddr);

    const c = port.counters();
    expect(c.toGuest.frames).toBeGreaterThanOrEqual(2);
    expect(c.hostDrops.echo).toBe(0);
    expect(Object.values(c.guestDrops).reduce((x, y) => x + y, 0)).toBe(0);
    expect(dp.clientCounters(vm.id).frames).toBe(c.toGuest.frames);
  }, 150_000);
});
