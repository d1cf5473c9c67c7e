// Live page: the entry point. Sets up a NIC (the demo's at first), redraws the slot table, mode and clients after every
// change, and runs the traffic generator on a worker lane when the page is cross-origin isolated, on its own thread otherwise.

import { DEMO_CONFIG } from '../config/demo.js';
import { MacslotError, parseConfig, parseConfigText, type MacslotConfig, type NicFileConfig } from '../index.js';
import { renderClients, syncClients, wireOpenForm } from './clients.js';
import { attempt, byId, showError } from './dom.js';
import { openSession, type Session } from './session.js';
import { renderMode, renderSlots } from './slots.js';
import { explainSample, wireCaptures, wireExplain } from './tools.js';
import { prestartWorker, renderMixFields, Traffic } from './traffic.js';

const TICK_MS = 250;
const isolated = globalThis.crossOriginIsolated === true && typeof SharedArrayBuffer === 'function';

let session: Session | undefined;
let traffic: Traffic | undefined;
let unsubscribe: (() => void) | undefined;
let redrawQueued = false;

/** Redraws what follows the NIC, once per task however many events a change produced. */
function queueRedraw(): void {
  if (redrawQueued) return;
  redrawQueued = true;
  queueMicrotask(() => {
    redrawQueued = false;
    const s = session;
    if (s === undefined) return;
    // Runs from the NIC's listener: whatever fails is shown, never thrown into the listener's microtask.
    try {
      renderSlots(s);
      renderMode(s);
      syncClients(s, queueRedraw);
      traffic?.changed();
    } catch (err) {
      showError(byId('json-error'), err);
    }
  });
}

const input = (id: string): HTMLInputElement => byId<HTMLInputElement>(id);

/** Shows a configuration's NIC in the fields. */
function fillFields(nic: NicFileConfig): void {
  input('f-primary').value = nic.primary;
  const f = nic.factory;
  input('f-factory-base').value = f === undefined ? '' : Array.isArray(f) ? (f[0] ?? '') : f.base;
  input('f-factory-count').value = String(f === undefined ? 0 : Array.isArray(f) ? f.length : f.count);
  input('f-unicast').value = nic.unicastEntries === undefined ? '' : String(nic.unicastEntries);
  input('f-multicast').value = nic.multicastEntries === undefined ? '' : String(nic.multicastEntries);
  byId<HTMLSelectElement>('f-overflow').value = nic.overflow ?? 'promiscuous';
  const h = nic.multicastHash;
  byId<HTMLSelectElement>('f-hash').value = h === false ? 'off' : String(typeof h === 'object' ? h.filterType : 0);
}

/** The NIC the fields describe, as a configuration's `nic` object (validated later by parseConfig). */
function fieldsConfig(): MacslotConfig {
  const num = (id: string): number | undefined => (input(id).value.trim() === '' ? undefined : Number(input(id).value));
  const base = input('f-factory-base').value.trim();
  const factoryCount = num('f-factory-count') ?? 0;
  const hash = byId<HTMLSelectElement>('f-hash').value;
  const unicastEntries = num('f-unicast');
  const multicastEntries = num('f-multicast');
  const nic = {
    primary: input('f-primary').value.trim(),
    ...(base !== '' && factoryCount > 0 ? { factory: { base, count: factoryCount } } : {}),
    ...(unicastEntries !== undefined ? { unicastEntries } : {}),
    ...(multicastEntries !== undefined ? { multicastEntries } : {}),
    overflow: byId<HTMLSelectElement>('f-overflow').value,
    multicastHash: hash === 'off' ? false : { filterType: Number(hash) },
  };
  return parseConfig({ nic, clients: [] });
}

/** Replaces the session: stops the old traffic and data plane, builds the new NIC, redraws everything. */
async function setUp(config: MacslotConfig): Promise<void> {
  const next = await openSession(config, isolated);
  traffic?.close();
  unsubscribe?.();
  session?.dp.close();
  session = next;
  const s = next;
  traffic = new Traffic(s, (frame) => explainSample(s, frame));
  unsubscribe = s.nic.on(() => queueRedraw());
  fillFields(config.nic);
  byId<HTMLTextAreaElement>('config-json').value = JSON.stringify(config, null, 2);
  renderClients(s, queueRedraw);
  renderSlots(s);
  renderMode(s);
  traffic.renderSample();
  // The generator's lane comes up in the background (a worker takes a while to start); Start waits for it.
  const t = traffic;
  const start = byId<HTMLButtonElement>('t-start');
  start.disabled = true;
  start.textContent = 'Start traffic';
  byId<HTMLButtonElement>('t-stop').disabled = true;
  delete document.body.dataset.lane;
  t.attach().then(
    (where) => {
      if (traffic !== t) return;
      start.disabled = false;
      document.body.dataset.lane = where;
    },
    (err: unknown) => showError(byId('traffic-error'), err),
  );
}

/** Runs a set-up, showing its error (e.g. CONFIG_INVALID naming the JSON path) in `error`. */
function setUpFrom(error: HTMLElement, make: () => MacslotConfig): void {
  let config: MacslotConfig;
  if (!attempt(error, () => (config = make()))) return;
  setUp(config!).then(
    () => (error.textContent = ''),
    (err: unknown) => showError(error, err),
  );
}

function wireSetup(): void {
  byId<HTMLFormElement>('fields-form').addEventListener('submit', (e) => {
    e.preventDefault();
    setUpFrom(byId('fields-error'), fieldsConfig);
  });
  byId<HTMLFormElement>('json-form').addEventListener('submit', (e) => {
    e.preventDefault();
    setUpFrom(byId('json-error'), () => parseConfig(parseConfigText(byId<HTMLTextAreaElement>('config-json').value, 'the JSON')));
  });
  byId('demo').addEventListener('click', () => setUpFrom(byId('json-error'), () => DEMO_CONFIG));
  const file = input('config-file');
  file.addEventListener('change', () => {
    const f = file.files?.[0];
    if (f === undefined) return;
    f.text().then(
      (text) => setUpFrom(byId('json-error'), () => parseConfig(parseConfigText(text, f.name))),
      (err: unknown) => showError(byId('json-error'), err),
    );
  });
}

function wireTraffic(): void {
  const start = byId<HTMLButtonElement>('t-start');
  const stop = byId<HTMLButtonElement>('t-stop');
  byId<HTMLFormElement>('traffic-form').addEventListener('submit', (e) => {
    e.preventDefault();
    if (traffic === undefined) return;
    const t = traffic;
    if (attempt(byId('traffic-error'), () => t.start())) {
      stop.disabled = false;
      start.textContent = 'Apply to the running traffic';
    }
  });
  stop.addEventListener('click', () => {
    traffic?.stop();
    stop.disabled = true;
    start.textContent = 'Start traffic';
    start.focus();
  });
}

function showIsolation(): void {
  const notice = byId('isolation');
  if (isolated) {
    notice.textContent =
      'Cross-origin isolated: the data plane is in shared memory, and the traffic generator runs in a Web Worker on a lane of its own.';
  } else {
    notice.className = 'single';
    notice.textContent =
      '⚠ Single-thread mode: this page is not cross-origin isolated (no COOP and COEP headers), so there is no shared memory; ' +
      'the data plane and the traffic generator run on the page’s own thread, in short slices.';
  }
  document.body.dataset.isolated = String(isolated);
}

function boot(): void {
  performance.mark('macslot-boot');
  if (isolated) prestartWorker();
  showIsolation();
  renderMixFields();
  wireSetup();
  wireOpenForm(() => session, queueRedraw);
  wireTraffic();
  wireExplain(() => session);
  wireCaptures(() => session);
  setInterval(() => traffic?.tick(), TICK_MS);
  setUp(DEMO_CONFIG).then(
    () => {
      performance.mark('macslot-ready');
      document.body.dataset.ready = 'true';
    },
    (err: unknown) => showError(byId('json-error'), err instanceof Error ? err : new MacslotError('DATA_PLANE', String(err))),
  );
}

boot();
