// Command line: `macslot inspect`, the NIC's Address Support report and every slot's Address Get, as set up by a configuration.

import { nicFromFile, type Io } from './common.js';
import { table } from './table.js';

/** Prints addressSupport() and addressGet() for every slot; throws CONFIG_INVALID. */
export function runInspect(o: { config: string; json: boolean }, io: Io): void {
  const { nic } = nicFromFile(o.config);
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
    io.out(JSON.stringify({ support, slots }, null, 2) + '\n');
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
}
