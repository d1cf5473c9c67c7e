// Command line: `macslot inspect`, the NIC's Address Support report and every slot's Address Get, as set up by a configuration.

import type { VlanPortView } from '../vlan/membership.js';
import { nicFromFile, type Io } from './common.js';
import { table } from './table.js';

/** One port's VLANs as inspect shows them: the wire's or a client's. */
interface PortRow {
  readonly port: string;
  /** `access` (one VLAN, untagged) or `trunk` (tagged, but for the native VLAN). */
  readonly mode: 'access' | 'trunk';
  readonly vlans: readonly number[];
  /** The VLAN of untagged frames (the PVID), or null when untagged frames are dropped. */
  readonly native: number | null;
}

function portRow(port: string, view: VlanPortView): PortRow {
  const access = view.vids.length === 1 && view.pvid === view.vids[0];
  return { port, mode: access ? 'access' : 'trunk', vlans: view.vids, native: view.pvid ?? null };
}

/** Prints addressSupport(), addressGet() for every slot and, when the file uses VLANs, every port's VLANs; throws CONFIG_INVALID. */
export function runInspect(o: { config: string; json: boolean }, io: Io): void {
  const { nic, vlans } = nicFromFile(o.config, { vlans: true });
  const ports: PortRow[] | undefined =
    vlans === undefined
      ? undefined
      : [
          portRow('(wire)', vlans.get('uplink')!),
          ...nic.clients().flatMap((c) => {
            const view = vlans.get(c.id);
            return view === undefined ? [] : [portRow(c.name, view)];
          }),
        ];
  const s = nic.addressSupport();
  const support = {
    multipleFactory: s.multipleFactory,
    totalSlots: s.totalSlots,
    availableSlots: s.availableSlots,
    firstFactory: s.firstFactory?.toString() ?? null,
    lastFactory: s.lastFactory?.toString() ?? null,
    totalUnicastEntries: s.totalUnicastEntries,
    availableUnicastEntries: s.availableUnicastEntries,
    totalMulticastEntries: s.totalMulticastEntries,
    availableMulticastEntries: s.availableMulticastEntries,
    mode: s.mode,
    promiscReasons: [...s.promiscReasons],
  };
  const slots = nic.slots().map(({ slot }) => {
    const i = nic.addressGet(slot);
    return {
      slot: i.slot,
      mac: i.mac.toString(),
      reserved: i.reserved,
      active: i.active,
      owner: i.owner ?? null,
      kind: i.kind,
      placement: i.placement ?? null,
    };
  });
  if (o.json) {
    io.out(JSON.stringify({ support, slots, ...(ports !== undefined ? { vlans: ports } : {}) }, null, 2) + '\n');
    return;
  }
  io.out('Address support:\n');
  io.out(
    table(
      ['field', 'value'],
      Object.entries(support).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') || '-' : String(v ?? '-')]),
    ) + '\n\n',
  );
  io.out('Slots (addressGet):\n');
  io.out(
    table(
      ['slot', 'address', 'kind', 'reserved', 'active', 'client', 'filter'],
      slots.map((i) => [
        String(i.slot),
        i.mac,
        i.kind,
        i.reserved ? 'yes' : 'no',
        i.active ? 'yes' : 'no',
        i.owner ?? '-',
        i.placement ?? '-',
      ]),
    ) + '\n',
  );
  if (ports === undefined) return;
  io.out('\nVLANs (the wire and each client):\n');
  io.out(
    table(
      ['port', 'mode', 'vlans', 'untagged'],
      ports.map((p) => [p.port, p.mode, p.vlans.join(', '), p.native === null ? '-' : String(p.native)]),
    ) + '\n',
  );
}
