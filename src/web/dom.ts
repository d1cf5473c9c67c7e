// Live page: small DOM helpers, and how an error is shown next to the control that caused it.

import { isMacslotError } from '../index.js';

/** Returns the element with `id`; throws when the page lacks it (a page and script out of step). */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (e === null) throw new Error(`the page has no #${id}`);
  return e as T;
}

/** Creates an element with text, a class and attributes, and appends `children`. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: { text?: string; className?: string; attrs?: Record<string, string> } = {},
  ...children: Node[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (props.text !== undefined) e.textContent = props.text;
  if (props.className !== undefined) e.className = props.className;
  for (const [k, v] of Object.entries(props.attrs ?? {})) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

/** Returns a table row of text cells; a cell given as [text, class] gets that class. */
export function row(cells: readonly (string | readonly [string, string])[], className?: string): HTMLTableRowElement {
  const tr = el('tr', className !== undefined ? { className } : {});
  for (const c of cells) tr.append(typeof c === 'string' ? el('td', { text: c }) : el('td', { text: c[0], className: c[1] }));
  return tr;
}

/** Shows `err` in `target`: a MacslotError as its code and message (the code also in `data-code`), anything else as its message. */
export function showError(target: HTMLElement, err: unknown): void {
  if (isMacslotError(err)) {
    target.dataset.code = err.code;
    target.textContent = err.message.startsWith(`${err.code}: `) ? err.message : `${err.code}: ${err.message}`;
  } else {
    delete target.dataset.code;
    target.textContent = err instanceof Error ? err.message : String(err);
  }
}

/** Clears an error shown by `showError`. */
export function clearError(target: HTMLElement): void {
  delete target.dataset.code;
  target.textContent = '';
}

/** Runs `fn`; shows what it throws in `target` (else clears it). Returns whether it succeeded. */
export function attempt(target: HTMLElement, fn: () => void): boolean {
  try {
    fn();
    clearError(target);
    return true;
  } catch (err) {
    showError(target, err);
    return false;
  }
}

/** Formats a count with thousands separators, the same in every locale. */
export function count(n: number): string {
  return String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** Replaces the rows of `table`'s body. */
export function fillTable(table: HTMLTableElement, rows: readonly HTMLTableRowElement[]): void {
  table.tBodies[0]!.replaceChildren(...rows);
}
