// Live page: the slot table (addressGet for every slot) and the mode banner with its promiscuous reasons.

import { byId, count, fillTable, row } from './dom.js';
import type { Session } from './session.js';

const PLACEMENT: Readonly<Record<string, string>> = {
  primary: 'primary entry',
  unicast: 'hardware unicast entry',
  multicast: 'borrowed multicast entry',
  software: 'software',
};

/** Redraws the slot table: one row per slot, the software-placed ones marked by word, symbol and colour. */
export function renderSlots(s: Session): void {
  const rows = s.nic.slots().map((info) => {
    const placement = info.placement === undefined ? '-' : (PLACEMENT[info.placement] ?? info.placement);
    return row(
      [
        String(info.slot),
        [info.mac.toString(), 'mac'],
        info.kind,
        info.reserved ? 'yes' : 'no',
        info.owner ?? '-',
        [placement, 'placement'],
      ],
      info.placement === 'software' ? 'software' : undefined,
    );
  });
  fillTable(byId<HTMLTableElement>('slots'), rows);
}

/** Redraws the mode banner and the entry counts. */
export function renderMode(s: Session): void {
  const m = s.nic.addressSupport();
  const banner = byId('mode');
  banner.className = m.mode;
  banner.dataset.mode = m.mode;
  const reasons = m.promiscReasons.length > 0 ? ` (reasons: ${m.promiscReasons.join(', ')})` : '';
  const what =
    m.mode === 'filtered'
      ? '✓ filtered: the NIC accepts only what its entries and hash admit'
      : m.mode === 'all-multicast'
        ? '⚠ all-multicast: every multicast frame is accepted and filtered in software'
        : '⚠ promiscuous: the NIC accepts every frame and software picks the receivers';
  banner.textContent = `Mode: ${what}${reasons}`;
  byId('support').textContent =
    `Primary ${s.nic.primary.toString()}; ${m.totalSlots} factory MACs (${m.availableSlots} reservable now); ` +
    `unicast entries ${m.totalUnicastEntries - m.availableUnicastEntries} of ${m.totalUnicastEntries} used; ` +
    `multicast entries ${m.totalMulticastEntries - m.availableMulticastEntries} of ${m.totalMulticastEntries} used; ` +
    `${count(s.nic.clients().length)} clients open.`;
}
