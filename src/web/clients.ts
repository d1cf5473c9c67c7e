// Live page: open and close clients, and every client operation through its own control, each with its error beside it.

import { MacslotError, type NicClient } from '../index.js';
import { attempt, byId, el } from './dom.js';
import { joinDefaultVlan, vlanText, type Session } from './session.js';

/** Parses a slot field; throws INVALID_SLOT for anything but a whole number. */
function slotOf(input: HTMLInputElement): number {
  const text = input.value.trim();
  if (!/^\d{1,9}$/.test(text)) throw new MacslotError('INVALID_SLOT', `slot ${JSON.stringify(text.slice(0, 40))} is not a whole number`);
  return Number(text);
}

/** A labelled input with its id derived from the client's id and the field. */
function field(prefix: string, name: string, label: string, attrs: Record<string, string> = {}): [HTMLLabelElement, HTMLInputElement] {
  const id = `${prefix}-${name}`;
  return [
    el('label', { text: label, attrs: { for: id } }),
    el('input', { attrs: { id, autocomplete: 'off', spellcheck: 'false', ...attrs } }),
  ];
}

/** One row of controls: inputs, buttons that run `actions`, and the error output they share. */
function control(
  prefix: string,
  name: string,
  inputs: readonly [HTMLLabelElement, HTMLInputElement][],
  actions: readonly [string, () => void][],
  done: () => void,
): HTMLElement {
  const error = el('p', { className: 'error', attrs: { id: `${prefix}-${name}-error`, role: 'alert' } });
  const buttons = actions.map(([label, act]) => {
    const b = el('button', { text: label, attrs: { type: 'button' } });
    b.addEventListener('click', () => {
      attempt(error, act);
      done();
    });
    return b;
  });
  // Enter in a field runs the row's first action, as in a form.
  for (const [, input] of inputs)
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') {
        e.preventDefault();
        buttons[0]?.click();
      }
    });
  return el('div', { className: 'control' }, ...inputs.flat(), ...buttons, error);
}

/** A checkbox bound to a client setting; a refused change is shown and the box set back. */
function toggle(
  prefix: string,
  name: string,
  label: string,
  get: () => boolean,
  set: (on: boolean) => void,
  done: () => void,
): HTMLElement {
  const id = `${prefix}-${name}`;
  const box = el('input', { attrs: { id, type: 'checkbox' } });
  box.checked = get();
  const error = el('p', { className: 'error', attrs: { id: `${id}-error`, role: 'alert' } });
  box.addEventListener('change', () => {
    attempt(error, () => set(box.checked));
    box.checked = get();
    done();
  });
  return el('div', { className: 'control' }, box, el('label', { text: label, attrs: { for: id } }), error);
}

/** What a client holds now, as one line. */
function stateText(c: NicClient, s: Session): string {
  const macs = c.slots().map((slot) => `${slot}: ${s.nic.addressGet(slot).mac.toString()}`);
  const groups = c.groups();
  return (
    `Slots ${macs.length > 0 ? macs.join(', ') : 'none'}; groups ${groups.length > 0 ? groups.join(', ') : 'none'}; ` +
    `broadcast ${c.broadcast ? 'on' : 'off'}; promiscuous ${c.promiscuous ? 'on' : 'off'}` +
    (s.vlans === undefined ? '.' : `; ${vlanText(s, c.id)}.`)
  );
}

/** The panel of one client: a fieldset named after it, with every operation. */
function panel(s: Session, c: NicClient, changed: () => void): HTMLElement {
  const prefix = `c${c.id}`;
  const state = el('p', { className: 'state', text: stateText(c, s), attrs: { id: `${prefix}-state`, 'aria-live': 'polite' } });
  const done = (): void => {
    if (c.open) state.textContent = stateText(c, s);
    changed();
  };
  const reserveSlot = field(prefix, 'reserve-slot', 'Slot to reserve (empty: any factory slot)', { inputmode: 'numeric' });
  const modifySlot = field(prefix, 'modify-slot', 'Slot to modify', { inputmode: 'numeric' });
  const modifyMac = field(prefix, 'modify-mac', 'New MAC');
  const unreserveSlot = field(prefix, 'unreserve-slot', 'Slot to unreserve', { inputmode: 'numeric' });
  const addMac = field(prefix, 'add-mac', 'MAC to add (empty: random)');
  const removeSlot = field(prefix, 'remove-slot', 'Slot to remove', { inputmode: 'numeric' });
  const group = field(prefix, 'group', 'Multicast group');
  const close = el('button', { text: 'Close client', attrs: { type: 'button' } });
  const closeError = el('p', { className: 'error', attrs: { id: `${prefix}-close-error`, role: 'alert' } });
  close.addEventListener('click', () => {
    if (!attempt(closeError, () => c.close())) return;
    changed();
    // The panel goes away with the client: keyboard focus moves to where a client is opened.
    byId('open-name').focus();
  });
  const controls = el(
    'div',
    { className: 'controls' },
    control(
      prefix,
      'reserve',
      [reserveSlot],
      [['Reserve', () => (reserveSlot[1].value.trim() === '' ? c.addressReserve() : c.addressReserve({ slot: slotOf(reserveSlot[1]) }))]],
      done,
    ),
    control(
      prefix,
      'modify',
      [modifySlot, modifyMac],
      [['Modify', () => c.addressModify(slotOf(modifySlot[1]), modifyMac[1].value.trim())]],
      done,
    ),
    control(prefix, 'unreserve', [unreserveSlot], [['Unreserve', () => c.addressUnreserve(slotOf(unreserveSlot[1]))]], done),
    control(
      prefix,
      'add',
      [addMac],
      [['Add', () => (addMac[1].value.trim() === '' ? c.addressAdd() : c.addressAdd(addMac[1].value.trim()))]],
      done,
    ),
    control(prefix, 'remove', [removeSlot], [['Remove', () => c.addressRemove(slotOf(removeSlot[1]))]], done),
    control(
      prefix,
      'group',
      [group],
      [
        ['Join', () => c.multicastJoin(group[1].value.trim())],
        ['Leave', () => c.multicastLeave(group[1].value.trim())],
      ],
      done,
    ),
    toggle(
      prefix,
      'broadcast',
      'Receive broadcast',
      () => c.broadcast,
      (on) => c.setBroadcast(on),
      done,
    ),
    toggle(
      prefix,
      'promiscuous',
      'Promiscuous (needs the grant given at opening)',
      () => c.promiscuous,
      (on) => c.setPromiscuous(on),
      done,
    ),
    el('div', { className: 'control' }, close, closeError),
  );
  return el(
    'fieldset',
    { className: 'client', attrs: { id: prefix, 'data-client': c.name } },
    el('legend', { text: `Client ${c.name}` }),
    state,
    controls,
  );
}

/** Redraws every client's panel (on set-up, open and close; other changes update a panel's state line in place). */
export function renderClients(s: Session, changed: () => void): void {
  byId('client-list').replaceChildren(...s.nic.clients().map((c) => panel(s, c, changed)));
}

/**
 * After any change: redraws the panels when clients opened or closed, else refreshes each panel's state line in place (so
 * that the fields and error messages stay as they are).
 */
export function syncClients(s: Session, changed: () => void): void {
  const shown = Array.from(byId('client-list').children, (e) => e.id).join(' ');
  if (
    shown !==
    s.nic
      .clients()
      .map((c) => `c${c.id}`)
      .join(' ')
  ) {
    renderClients(s, changed);
    return;
  }
  for (const c of s.nic.clients()) {
    const state = document.getElementById(`c${c.id}-state`);
    if (state !== null) state.textContent = stateText(c, s);
  }
}

/** Wires the "Open client" form: `opened` runs after a client opens. */
export function wireOpenForm(current: () => Session | undefined, opened: () => void): void {
  const form = byId<HTMLFormElement>('open-form');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const s = current();
    if (s === undefined) return;
    const name = byId<HTMLInputElement>('open-name');
    const ok = attempt(byId('open-error'), () => {
      const c = s.nic.openClient(name.value.trim(), {
        allowPromiscuous: byId<HTMLInputElement>('open-grant').checked,
        broadcast: byId<HTMLInputElement>('open-broadcast').checked,
      });
      joinDefaultVlan(s, c.id);
    });
    if (ok) {
      name.value = '';
      opened();
    }
  });
}
