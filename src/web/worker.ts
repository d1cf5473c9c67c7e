// Live page: the generator's Web Worker. It attaches to the page's data plane over shared memory, takes a lane and the
// ring-producer role, and runs the generator in slices so that messages (a new plan, stop) get through.

import { DataPlane, type DataPlaneHandle } from '../index.js';
import type { Plan } from './frames.js';
import { Generator } from './generator.js';

/** Messages the page sends. */
export type ToWorker =
  | { readonly type: 'attach'; readonly handle: DataPlaneHandle; readonly stats: SharedArrayBuffer }
  | { readonly type: 'plan'; readonly plan: Plan }
  | { readonly type: 'run' }
  | { readonly type: 'stop' };

/** Messages the worker sends. */
export type FromWorker = { readonly type: 'attached'; readonly lane: number } | { readonly type: 'error'; readonly message: string };

// This file runs in a worker; the page's tsconfig has the DOM library, so the worker's scope is named by what it uses.
const scope = self as unknown as {
  postMessage(message: FromWorker): void;
  onmessage: ((event: { data: ToWorker }) => void) | null;
};

const SLICE_MS = 20;
let lane: DataPlane | undefined;
let generator: Generator | undefined;
let running = false;

function report(err: unknown): void {
  running = false;
  scope.postMessage({ type: 'error', message: err instanceof Error ? err.message : String(err) });
}

function loop(): void {
  if (!running || generator === undefined) return;
  try {
    generator.step(SLICE_MS);
  } catch (err) {
    report(err);
    return;
  }
  setTimeout(loop, 0);
}

async function handle(msg: ToWorker): Promise<void> {
  if (msg.type === 'attach') {
    lane = await DataPlane.attach(msg.handle);
    if (!lane.claimDelivery()) throw new Error('another lane delivers into the rings');
    generator = new Generator(lane, new Float64Array(msg.stats));
    scope.postMessage({ type: 'attached', lane: lane.lane });
  } else if (msg.type === 'plan') generator?.plan(msg.plan);
  else if (msg.type === 'run') {
    if (!running) {
      running = true;
      loop();
    }
  } else running = false;
}

scope.onmessage = (event) => {
  handle(event.data).catch(report);
};
