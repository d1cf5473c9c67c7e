// Command line: `macslot demo`, the main job on a built-in default NIC, clients and traffic.

import { classifyFrame, RULES, type Rule } from '../filter/reference.js';
import { Nic } from '../nic/nic.js';
import { ETH_ZLEN } from '../wire/ethernet.js';
import { Mac } from '../wire/mac.js';
import { table } from './table.js';

/** One built-in frame: where it goes and why it is in the mix. */
interface DemoFrame {
  readonly dst: string;
  readonly note: string;
  readonly length?: number;
}

const TRAFFIC: readonly DemoFrame[] = [
  { dst: '00:14:4f:00:00:01', note: "vm-a's factory MAC" },
  { dst: '02:08:20:00:00:0b', note: "vm-b's local MAC (modified)" },
  { dst: '00:14:4f:00:00:00', note: 'the primary' },
  { dst: 'ff:ff:ff:ff:ff:ff', note: 'broadcast (ARP, DHCP)' },
  { dst: '33:33:00:00:00:01', note: 'IPv6 all-nodes' },
  { dst: '01:00:5e:00:00:fb', note: 'mDNS (IPv4)' },
  { dst: '01:00:5e:00:00:fc', note: 'a group nobody joined' },
  { dst: '00:14:4f:00:00:02', note: 'a factory MAC released earlier' },
  { dst: '00:00:5e:00:53:99', note: 'unknown unicast' },
  { dst: '00:14:4f:00:00:01', note: 'a runt (10 bytes)', length: 10 },
];

function frameTo(dst: string, length = ETH_ZLEN): Uint8Array {
  const frame = new Uint8Array(length);
  const d = Mac.parse(dst).toBytes();
  frame.set(d.subarray(0, Math.min(6, length)));
  if (length >= 14) {
    frame.set([0x02, 0, 0, 0, 0, 0x99], 6);
    frame.set([0x08, 0x00], 12);
  }
  return frame;
}

/** Runs the demo; `write` receives each line of output as it is produced. */
export function runDemo(write: (line: string) => void): void {
  const nic = new Nic({
    primary: '00:14:4f:00:00:00',
    factory: { base: '00:14:4f:00:00:01', count: 4 },
    unicastEntries: 3,
    multicastEntries: 1,
  });
  const log: string[] = [];
  nic.on((e) => {
    const what =
      e.type === 'reserved' || e.type === 'released' || e.type === 'modified' || e.type === 'placed'
        ? `slot ${e.slot} ${e.mac?.toString() ?? ''}`
        : e.type === 'joined' || e.type === 'left' || e.type === 'group-stage'
          ? e.group.toString()
          : e.type === 'mode'
            ? `${e.mode} [${e.reasons.join(', ')}]`
            : '';
    log.push(`  #${String(e.generation).padStart(2)} ${e.type.padEnd(14)} ${'client' in e ? e.client.padEnd(8) : ''.padEnd(8)} ${what}`.trimEnd());
  });

  const s = nic.addressSupport();
  write(`macslot demo: one NIC, primary ${nic.primary.toString()}, factory ${s.firstFactory?.toString()}..${s.lastFactory?.toString()}`);
  write(`  ${s.totalSlots} factory slots, ${s.totalUnicastEntries} exact unicast entries, ${s.totalMulticastEntries} multicast entry, 4096-bit multicast hash`);
  write('');

  const a = nic.openClient('vm-a');
  const b = nic.openClient('vm-b');
  const c = nic.openClient('vm-c', { broadcast: false });
  const tap = nic.openClient('tap', { allowPromiscuous: true });
  a.addressReserve();
  const rb = b.addressReserve();
  b.addressModify(rb.slot, '02:08:20:00:00:0b');
  const rc = c.addressReserve();
  c.addressUnreserve(rc.slot);
  c.addressAdd('02:08:20:00:00:0c');
  a.multicastJoin('33:33:00:00:00:01');
  b.multicastJoin('33:33:00:00:00:01');
  b.multicastJoin('01:00:5e:00:00:fb');
  let stolen = 'refused';
  try {
    c.addressModify(rb.slot, '02:08:20:00:00:0c');
  } catch (err) {
    stolen = `refused (${(err as { code?: string }).code})`;
  }
  write('Clients reserve, modify, join and release (change events):');
  for (const line of log.splice(0)) write(line);
  write(`  vm-c tries to change vm-b's slot ${rb.slot}: ${stolen}`);
  write('');

  write('Slot table (addressGet for every slot):');
  write(table(['slot', 'address', 'kind', 'in use', 'client', 'filter'], nic.slots().map((i) => [String(i.slot), i.mac.toString(), i.kind, i.reserved ? 'yes' : 'no', i.owner ?? '-', i.placement ?? '-'])));
  write('');

  const classifyAll = (title: string, traffic: readonly DemoFrame[]): void => {
    const state = nic.filterState();
    const names = (ids: readonly number[]): string => ids.map((id) => nic.client(id)?.name ?? `#${id}`).join(', ') || '-';
    const perClient = new Map<string, number>();
    const perRule = new Map<Rule, number>();
    const rows = traffic.map((f) => {
      const v = classifyFrame(state, frameTo(f.dst, f.length));
      for (const id of v.deliver) perClient.set(names([id]), (perClient.get(names([id])) ?? 0) + 1);
      perRule.set(v.rule, (perRule.get(v.rule) ?? 0) + 1);
      return [f.dst, f.note, v.rule, v.path, names(v.deliver)];
    });
    const mode = nic.addressSupport();
    write(`${title} (NIC mode: ${mode.mode}${mode.promiscReasons.length ? ` [${mode.promiscReasons.join(', ')}]` : ''}):`);
    write(table(['destination', 'what', 'rule', 'path', 'delivered to'], rows));
    write('Per-client deliveries:');
    write(table(['client', 'frames'], nic.clients().map((cl) => [cl.name, String(perClient.get(cl.name) ?? 0)])));
    write(`Verdicts: ${RULES.filter((r) => perRule.has(r)).map((r) => `${r} ${perRule.get(r)}`).join(', ')}`);
    write('');
  };
  classifyAll('Traffic through the accept filter', TRAFFIC);

  write('More MACs than hardware entries: vm-a adds three more.');
  for (const m of ['02:08:20:00:00:a1', '02:08:20:00:00:a2', '02:08:20:00:00:a3']) a.addressAdd(m);
  for (const line of log.splice(0)) write(line);
  write('');
  classifyAll('Overflow: the NIC is promiscuous and software filters, still failing closed', [...TRAFFIC, ...TRAFFIC_OVERFLOW]);

  write('The tap, granted promiscuous mode, turns it on and sees everything:');
  tap.setPromiscuous(true);
  classifyAll('Promiscuous tap', TRAFFIC.slice(6, 9));
  tap.setPromiscuous(false);
  log.splice(0);

  write('vm-a closes; freed entries take the software-held MACs back into hardware:');
  a.close();
  for (const line of log.splice(0)) write(line);
  write(`NIC mode now: ${nic.addressSupport().mode}`);
}

const TRAFFIC_OVERFLOW: readonly DemoFrame[] = [{ dst: '02:08:20:00:00:a3', note: "vm-a's software-held MAC" }];
