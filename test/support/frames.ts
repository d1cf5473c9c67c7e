// Test helper: the few frames the emulator tests need (DHCPDISCOVER, ICMPv6 router solicitation, plain test frames) and their recognisers.

/** Returns the MAC text as 6 bytes. */
export function macBytes(mac: string): Uint8Array {
  return Uint8Array.from(mac.split(':').map((h) => parseInt(h, 16)));
}

/** Returns the MAC bytes as text. */
export function macText(bytes: Uint8Array, offset = 0): string {
  return Array.from(bytes.subarray(offset, offset + 6), (b) => b.toString(16).padStart(2, '0')).join(':');
}

function sum16(bytes: Uint8Array, initial = 0): number {
  let s = initial;
  for (let i = 0; i < bytes.length; i += 2) s += (bytes[i]! << 8) | (bytes[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** Returns an Ethernet frame: dst, src, EtherType and payload, padded to 60 bytes. */
export function ethernet(dst: string, src: string, type: number, payload: Uint8Array = new Uint8Array(46)): Uint8Array {
  const f = new Uint8Array(Math.max(60, 14 + payload.length));
  f.set(macBytes(dst), 0);
  f.set(macBytes(src), 6);
  f[12] = type >> 8;
  f[13] = type & 0xff;
  f.set(payload, 14);
  return f;
}

/** Returns a broadcast DHCPDISCOVER from `mac` (0.0.0.0:68 → 255.255.255.255:67) with transaction id `xid`. */
export function dhcpDiscover(mac: string, xid: number): Uint8Array {
  const dhcp = new Uint8Array(240 + 8);
  dhcp[0] = 1; // BOOTREQUEST
  dhcp[1] = 1; // Ethernet
  dhcp[2] = 6;
  new DataView(dhcp.buffer).setUint32(4, xid);
  dhcp[10] = 0x80; // broadcast flag: answer to ff:ff:ff:ff:ff:ff
  dhcp.set(macBytes(mac), 28);
  dhcp.set([99, 130, 83, 99], 236); // magic cookie
  dhcp.set([53, 1, 1, 55, 2, 1, 3, 255], 240); // DHCPDISCOVER, ask for mask and router, end
  const udp = new Uint8Array(8 + dhcp.length);
  const uv = new DataView(udp.buffer);
  uv.setUint16(0, 68);
  uv.setUint16(2, 67);
  uv.setUint16(4, udp.length);
  udp.set(dhcp, 8); // UDP checksum 0: none, allowed over IPv4
  const ip = new Uint8Array(20 + udp.length);
  const iv = new DataView(ip.buffer);
  ip[0] = 0x45;
  iv.setUint16(2, ip.length);
  ip[8] = 64;
  ip[9] = 17;
  ip.set([255, 255, 255, 255], 16);
  iv.setUint16(10, ~sum16(ip.subarray(0, 20)) & 0xffff);
  ip.set(udp, 20);
  return ethernet('ff:ff:ff:ff:ff:ff', mac, 0x0800, ip);
}

/** Returns the link-local IPv6 address (EUI-64) of `mac` as 16 bytes. */
export function linkLocal(mac: string): Uint8Array {
  const m = macBytes(mac);
  return Uint8Array.from([0xfe, 0x80, 0, 0, 0, 0, 0, 0, m[0]! ^ 2, m[1]!, m[2]!, 0xff, 0xfe, m[3]!, m[4]!, m[5]!]);
}

/** Returns an ICMPv6 router solicitation from `mac`'s link-local address to ff02::2, with a source link-layer option. */
export function routerSolicitation(mac: string): Uint8Array {
  const icmp = new Uint8Array(16);
  icmp[0] = 133;
  icmp[8] = 1; // source link-layer address option, 8 bytes
  icmp[9] = 1;
  icmp.set(macBytes(mac), 10);
  const src = linkLocal(mac);
  const dst = Uint8Array.from([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
  const pseudo = new Uint8Array(40);
  pseudo.set(src, 0);
  pseudo.set(dst, 16);
  new DataView(pseudo.buffer).setUint32(32, icmp.length);
  pseudo[39] = 58;
  const c = ~sum16(icmp, sum16(pseudo)) & 0xffff;
  icmp[2] = c >> 8;
  icmp[3] = c & 0xff;
  const ip = new Uint8Array(40 + icmp.length);
  ip[0] = 0x60;
  new DataView(ip.buffer).setUint16(4, icmp.length);
  ip[6] = 58;
  ip[7] = 255;
  ip.set(src, 8);
  ip.set(dst, 24);
  ip.set(icmp, 40);
  return ethernet('33:33:00:00:00:02', mac, 0x86dd, ip);
}

/** Returns the DHCP message type (option 53) of an IPv4/UDP BOOTP frame, or undefined for any other frame. */
export function dhcpMessageType(f: Uint8Array): number | undefined {
  if (f.length < 14 + 20 + 8 + 240 || f[12] !== 0x08 || f[13] !== 0x00 || f[23] !== 17) return undefined;
  const ihl = (f[14]! & 0x0f) * 4;
  const udp = 14 + ihl;
  const sport = (f[udp]! << 8) | f[udp + 1]!;
  if (sport !== 67 && sport !== 68) return undefined;
  const dhcp = udp + 8;
  if (f[dhcp + 236] !== 99 || f[dhcp + 237] !== 130 || f[dhcp + 238] !== 83 || f[dhcp + 239] !== 99) return undefined;
  for (let i = dhcp + 240; i < f.length; ) {
    const code = f[i]!;
    if (code === 255) break;
    if (code === 0) {
      i++;
      continue;
    }
    if (code === 53) return f[i + 2];
    i += 2 + f[i + 1]!;
  }
  return undefined;
}

/** Returns the ICMPv6 type of an IPv6 frame, or undefined. */
export function icmpv6Type(f: Uint8Array): number | undefined {
  if (f.length < 14 + 40 + 4 || f[12] !== 0x86 || f[13] !== 0xdd || f[14 + 6] !== 58) return undefined;
  return f[14 + 40];
}

/** Returns a test frame from `src` to `dst` whose payload carries `tag`, so a receiver can tell frames apart. */
export function tagged(dst: string, src: string, tag: number): Uint8Array {
  const p = new Uint8Array(46);
  new DataView(p.buffer).setUint32(0, tag);
  return ethernet(dst, src, 0x88b5, p);
}

/** Returns the tag of a frame built by `tagged`, or undefined. */
export function tagOf(f: Uint8Array): number | undefined {
  if (f.length < 18 || f[12] !== 0x88 || f[13] !== 0xb5) return undefined;
  return new DataView(f.buffer, f.byteOffset + 14, 4).getUint32(0);
}

/** Resolves once `cond()` holds, or rejects after `ms` naming `what`. */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** True when the tool is on PATH. */
export async function have(tool: string): Promise<boolean> {
  const { spawnSync } = await import('node:child_process');
  return spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
}

/**
 * Whether a test needing `tool` runs: yes when the tool is there; under CI (CI=true) a missing tool
 * fails the test instead of skipping it, so CI can never pass without the real peer.
 */
export async function needTool(tool: string): Promise<boolean> {
  if (await have(tool)) return true;
  if (process.env.CI === 'true') throw new Error(`${tool} is required under CI=true but is not installed (see .ci/run)`);
  return false;
}
