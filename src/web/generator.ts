// Live page: the traffic generator, run on a worker lane over shared memory or, without isolation, on the page's own lane.

import { type DataPlane, verdictPath } from '../index.js';
import { buildPattern, type Plan } from './frames.js';

/** Indices of the generator's figures in its statistics array (shared with the page when memory is shared). */
export const STAT = { frames: 0, software: 1, bursts: 2 } as const;
/** Length of the statistics array. */
export const STAT_WORDS = 4;

/**
 * Replays a plan's pattern through `rxBurst` at its rate (or as fast as it can), drains the clients' rings as their
 * consumers would, and adds frames and software-path frames to `stats`.
 */
export class Generator {
  readonly #dp: DataPlane;
  readonly #stats: Float64Array;
  #frames: Uint8Array[] = [];
  #clients: readonly number[] = [];
  #rate = 0;
  #started = 0;
  #sent = 0;

  /** Runs on `dp`'s lane, which must be the ring producer; figures go to `stats` (STAT_WORDS long). */
  constructor(dp: DataPlane, stats: Float64Array) {
    this.#dp = dp;
    this.#stats = stats;
  }

  /** Replaces what is sent; the rate's clock restarts. */
  plan(plan: Plan): void {
    this.#frames = buildPattern(plan).map((f) => f.bytes);
    this.#clients = plan.clients;
    this.#rate = plan.rate;
    this.#started = performance.now();
    this.#sent = 0;
  }

  /** Loads the pattern into the pool; the descriptors of a whole burst cycle through it. */
  #load(): number {
    const dp = this.#dp;
    const offsets: number[] = [];
    let off = 0;
    for (const f of this.#frames) {
      if (off + f.length > dp.pool.length) break;
      dp.pool.set(f, off);
      offsets.push(off);
      off = (off + f.length + 7) & ~7;
    }
    if (offsets.length === 0) return 0;
    for (let i = 0; i < dp.burst; i++) {
      const k = i % offsets.length;
      dp.descriptors[2 * i] = offsets[k]!;
      dp.descriptors[2 * i + 1] = this.#frames[k]!.length;
    }
    return dp.burst;
  }

  /** Sends bursts for about `budgetMs` (fewer when the rate is reached); returns the frames sent. */
  step(budgetMs: number): number {
    const dp = this.#dp;
    // Reloaded each time: on the page's own lane, explain and capture splitting use the same pool between steps.
    const burst = this.#load();
    if (burst === 0) return 0;
    const start = performance.now();
    let sent = 0;
    do {
      let n = burst;
      if (this.#rate > 0) {
        let due = Math.floor((this.#rate * (performance.now() - this.#started)) / 1000) - this.#sent;
        // More than a second behind (a slow tab, a paused debugger): start the clock again instead of bursting to catch up.
        if (due > this.#rate) {
          this.#started = performance.now() - 1000 * (this.#sent / this.#rate);
          due = 0;
        }
        if (due <= 0) break;
        n = Math.min(n, due);
      }
      dp.rxBurst(n);
      let software = 0;
      for (let i = 0; i < n; i++) if (verdictPath(dp.verdicts[i]!) === 'software') software++;
      for (const id of this.#clients) dp.ring(id).discard();
      this.#stats[STAT.frames]! += n;
      this.#stats[STAT.software]! += software;
      this.#stats[STAT.bursts]! += 1;
      this.#sent += n;
      sent += n;
    } while (performance.now() - start < budgetMs);
    return sent;
  }
}
