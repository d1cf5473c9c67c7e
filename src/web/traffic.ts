// Live page: the traffic generator's lane (a Web Worker over shared memory, or the page's own thread), the live chart,
// per-client counters, verdicts by rule and the traffic sample.

import { MacslotError, RULES } from '../index.js';
import { byId, count, el, fillTable, row, showError } from './dom.js';
import { buildPattern, DEFAULT_MIX, KINDS, toHex, type Mix, type Plan } from './frames.js';
import { Generator, STAT, STAT_WORDS } from './generator.js';
import { clientName, frameVid, type Session } from './session.js';
import type { FromWorker, ToWorker } from './worker.js';

/** Where the generator runs. */
interface Lane {
  /** Frames, software-path frames and bursts so far (see STAT). */
  readonly stats: Float64Array;
  readonly where: 'worker' | 'page';
  plan(plan: Plan): void;
  run(): void;
  stop(): void;
  close(): void;
}

const PAGE_SLICE_MS = 8;
const HISTORY = 120;
const SAMPLE_ROWS = 12;

let spare: Worker | undefined;

function newWorker(): Worker {
  return new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name: 'macslot traffic' });
}

/** Starts the first session's worker early, so that it loads its script while the page builds the NIC. */
export function prestartWorker(): void {
  spare ??= newWorker();
}

/** The generator in a module Web Worker, attached to the data plane over shared memory. */
async function workerLane(s: Session, onError: (message: string) => void): Promise<Lane> {
  const stats = new SharedArrayBuffer(STAT_WORDS * 8);
  const worker = spare ?? newWorker();
  spare = undefined;
  const post = (m: ToWorker): void => worker.postMessage(m);
  // The worker's lane delivers into the rings from now on; the page's lane only classifies (explain, captures).
  s.dp.releaseDelivery();
  await new Promise<void>((ok, fail) => {
    worker.onmessage = (e: MessageEvent<FromWorker>) => {
      if (e.data.type === 'attached') ok();
      else fail(new Error(`traffic worker: ${e.data.message}`));
    };
    worker.onerror = (e) => fail(new Error(`traffic worker: ${e.message}`));
    post({ type: 'attach', handle: s.dp.handle(), stats });
  });
  worker.onmessage = (e: MessageEvent<FromWorker>) => {
    if (e.data.type === 'error') onError(`traffic worker: ${e.data.message}`);
  };
  worker.onerror = (e) => onError(`traffic worker: ${e.message}`);
  return {
    stats: new Float64Array(stats),
    where: 'worker',
    plan: (plan) => post({ type: 'plan', plan }),
    run: () => post({ type: 'run' }),
    stop: () => post({ type: 'stop' }),
    close: () => worker.terminate(),
  };
}

/** The generator on the page's own lane, in short slices between the page's updates. */
function pageLane(s: Session, onError: (message: string) => void): Lane {
  const stats = new Float64Array(STAT_WORDS);
  const generator = new Generator(s.dp, stats);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const slice = (): void => {
    try {
      generator.step(PAGE_SLICE_MS);
      timer = setTimeout(slice, 0);
    } catch (err) {
      timer = undefined;
      onError(err instanceof Error ? err.message : String(err));
    }
  };
  const stop = (): void => {
    clearTimeout(timer);
    timer = undefined;
  };
  return {
    stats,
    where: 'page',
    plan: (plan) => generator.plan(plan),
    run: () => {
      if (timer === undefined) timer = setTimeout(slice, 0);
    },
    stop,
    close: stop,
  };
}

/** Mpps with two decimals, or three significant digits below 1 so that a low rate does not read as zero. */
function mppsText(mpps: number): string {
  return mpps >= 1 || mpps === 0 ? mpps.toFixed(2) : mpps.toPrecision(3);
}

/** Builds the mix fields once. */
export function renderMixFields(): void {
  byId('mix').replaceChildren(
    ...KINDS.flatMap((k) => [
      el('label', { text: `${k} weight`, attrs: { for: `mix-${k}` } }),
      el('input', { attrs: { id: `mix-${k}`, type: 'number', min: '0', max: '1000', value: String(DEFAULT_MIX[k]) } }),
    ]),
  );
}

function numberField(id: string, min: number, max: number, what: string): number {
  const v = byId<HTMLInputElement>(id).value.trim();
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max)
    throw new MacslotError('INVALID_ARGUMENT', `${what} must be a whole number in ${min}..${max}, got ${JSON.stringify(v.slice(0, 20))}`);
  return n;
}

function mixFields(): Mix {
  const mix = { ...DEFAULT_MIX };
  for (const k of KINDS) mix[k] = numberField(`mix-${k}`, 0, 1000, `the ${k} weight`);
  if (KINDS.every((k) => mix[k] === 0))
    throw new MacslotError('INVALID_ARGUMENT', 'the mix is empty: give at least one kind a weight above 0');
  return mix;
}

/** The traffic section for one session: its lane, figures, chart and tables. */
export class Traffic {
  readonly #s: Session;
  #lane: Lane | undefined;
  #running = false;
  #closed = false;
  #mix: Mix = { ...DEFAULT_MIX };
  #rate = 0;
  #size = 64;
  #last = { at: performance.now(), frames: 0, software: 0 };
  readonly #history: { mpps: number; software: number }[] = [];
  readonly #explain: (frame: Uint8Array) => void;

  /** `explain` runs when a sample row's Explain button is pressed. */
  constructor(s: Session, explain: (frame: Uint8Array) => void) {
    this.#s = s;
    this.#explain = explain;
  }

  /** Where the generator runs: on a worker lane when the memory is shared, else on the page's own thread. */
  async attach(): Promise<'worker' | 'page'> {
    const onError = (message: string): void => {
      this.stop();
      showError(byId('traffic-error'), new Error(message));
    };
    const lane = this.#s.shared ? await workerLane(this.#s, onError) : pageLane(this.#s, onError);
    // Another NIC was set up while the worker started: this one's lane is not needed any more.
    if (this.#closed) lane.close();
    else this.#lane = lane;
    return lane.where;
  }

  /** The plan for the NIC as it is now. */
  plan(): Plan {
    const unicast = this.#s.nic
      .slots()
      .filter((i) => i.active)
      .map((i) => i.mac.toString());
    const groups = [...new Set(this.#s.nic.clients().flatMap((c) => c.groups()))];
    const clients = this.#s.nic.clients().map((c) => c.id);
    return { unicast, groups, mix: this.#mix, size: this.#size, rate: this.#rate, clients };
  }

  /** Reads the traffic form and starts (or re-plans) the generator. Throws on a bad field. */
  start(): void {
    const mix = mixFields();
    const rate = numberField('t-rate', 0, 100_000_000, 'the rate');
    const size = numberField('t-size', 14, 1514, 'the frame length');
    this.#mix = mix;
    this.#rate = rate;
    this.#size = size;
    this.#lane?.plan(this.plan());
    this.#lane?.run();
    this.#running = true;
    this.renderSample();
  }

  /** Stops the generator. */
  stop(): void {
    this.#lane?.stop();
    this.#running = false;
  }

  /** True while the generator runs. */
  get running(): boolean {
    return this.#running;
  }

  /** After a NIC change: the generator follows the new MACs and groups, and the sample shows the new verdicts. */
  changed(): void {
    if (this.#running) this.#lane?.plan(this.plan());
    this.renderSample();
  }

  /** Stops and releases the lane. */
  close(): void {
    this.stop();
    this.#closed = true;
    this.#lane?.close();
    this.#lane = undefined;
  }

  /** Takes the figures since the last tick into the history and redraws figures, chart and tables. */
  tick(): void {
    const lane = this.#lane;
    if (lane === undefined) return;
    const now = performance.now();
    const frames = lane.stats[STAT.frames]!;
    const software = lane.stats[STAT.software]!;
    const dt = (now - this.#last.at) / 1000;
    const df = frames - this.#last.frames;
    if (dt > 0) {
      const point = { mpps: df / dt / 1e6, software: df > 0 ? (software - this.#last.software) / df : 0 };
      this.#history.push(point);
      if (this.#history.length > HISTORY) this.#history.shift();
      byId('mpps').textContent = mppsText(point.mpps);
      byId('software').textContent = (point.software * 100).toFixed(0);
      byId('frames').textContent = count(frames);
      byId('chart').setAttribute(
        'aria-label',
        `Throughput chart: now ${mppsText(point.mpps)} Mpps, ${(point.software * 100).toFixed(0)}% of frames on the software path`,
      );
    }
    this.#last = { at: now, frames, software };
    this.#drawChart();
    this.#renderCounters();
  }

  #drawChart(): void {
    const canvas = byId<HTMLCanvasElement>('chart');
    const g = canvas.getContext('2d');
    if (g === null) return;
    const { width: w, height: h } = canvas;
    const left = 52;
    const right = 44;
    const top = 12;
    const bottom = 20;
    const peak = Math.max(0.1, ...this.#history.map((p) => p.mpps));
    const scale = 10 ** Math.floor(Math.log10(peak));
    const max = Math.ceil((peak * 1.1) / scale) * scale;
    g.clearRect(0, 0, w, h);
    g.font = '11px system-ui, sans-serif';
    g.fillStyle = '#333';
    g.strokeStyle = '#ddd';
    g.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const y = top + ((h - top - bottom) * i) / 4;
      g.beginPath();
      g.moveTo(left, y);
      g.lineTo(w - right, y);
      g.stroke();
      g.fillText(`${((max * (4 - i)) / 4).toFixed(max < 4 ? 2 : 1)}`, 4, y + 4);
      g.fillText(`${(100 * (4 - i)) / 4}%`, w - right + 6, y + 4);
    }
    g.fillText('Mpps', 4, h - 6);
    g.fillText(`last ${HISTORY / 4} s`, left, h - 6);
    const x = (i: number): number => left + ((w - left - right) * i) / (HISTORY - 1);
    const line = (value: (p: { mpps: number; software: number }) => number, colour: string, dash: number[]): void => {
      const start = HISTORY - this.#history.length;
      g.strokeStyle = colour;
      g.lineWidth = 2;
      g.setLineDash(dash);
      g.beginPath();
      this.#history.forEach((p, i) => {
        const y = top + (h - top - bottom) * (1 - value(p));
        if (i === 0) g.moveTo(x(start + i), y);
        else g.lineTo(x(start + i), y);
      });
      g.stroke();
      g.setLineDash([]);
    };
    line((p) => p.mpps / max, '#1565c0', []);
    line((p) => p.software, '#e65100', [6, 4]);
  }

  #renderCounters(): void {
    const dp = this.#s.dp;
    fillTable(
      byId<HTMLTableElement>('counters'),
      this.#s.nic.clients().map((c) => {
        const k = dp.clientCounters(c.id);
        return row([
          c.name,
          [count(k.frames), 'num'],
          [count(k.bytes), 'num'],
          [count(k.broadcast), 'num'],
          [count(k.multicast), 'num'],
          [count(k.ringDrops), 'num'],
        ]);
      }),
    );
    const rules = dp.counters().rules;
    fillTable(
      byId<HTMLTableElement>('rules'),
      RULES.filter((r) => rules[r] > 0).map((r) =>
        r.startsWith('drop-') ? row([`✗ ${r}`, [count(rules[r]), 'num']], 'drop') : row([r, [count(rules[r]), 'num']]),
      ),
    );
  }

  /** Redraws the sample: the pattern's first frames and their verdicts now, each with an Explain button. */
  renderSample(): void {
    const frames = buildPattern(this.plan()).slice(0, SAMPLE_ROWS);
    fillTable(
      byId<HTMLTableElement>('sample'),
      frames.map((f, i) => {
        const v = this.#s.dp.classify(f.bytes);
        const dst = f.bytes.length >= 6 ? toHex(f.bytes.subarray(0, 6)).replaceAll(' ', ':') : '-';
        const tr = row(
          [
            String(i),
            f.kind,
            [dst, 'mac'],
            String(f.bytes.length),
            v.rule,
            v.path,
            v.deliver.map((id) => clientName(this.#s, id)).join(', ') || '-',
            String(frameVid(this.#s, f.bytes) ?? '-'),
          ],
          v.path === 'software' ? 'software' : undefined,
        );
        const button = el('button', {
          text: 'Explain',
          attrs: { type: 'button', 'aria-label': `Explain frame ${i} (${f.kind} to ${dst})` },
        });
        button.addEventListener('click', () => this.#explain(f.bytes));
        tr.append(el('td', {}, button));
        return tr;
      }),
    );
  }
}
