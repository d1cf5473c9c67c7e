// Test support: a clock and timer scheduler that move only when told, for MacManager's `clock` and `setTimer`.

interface Pending {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
}

/** Time that stands still until `advance`, which runs every timer that falls due, in order, at its own instant. */
export class FakeTime {
  now: number;
  #timers: Pending[] = [];
  #seq = 0;

  /** Starts at `now` milliseconds. */
  constructor(now = 0) {
    this.now = now;
  }

  /** The clock to hand a manager. */
  readonly clock = (): number => this.now;

  /** The scheduler to hand a manager: runs `fn` once `delayMs` has passed on this clock; returns its cancel. */
  readonly setTimer = (fn: () => void, delayMs: number): (() => void) => {
    const t: Pending = { at: this.now + Math.max(0, delayMs), seq: this.#seq++, fn };
    this.#timers.push(t);
    return () => {
      this.#timers = this.#timers.filter((x) => x !== t);
    };
  };

  /** Timers armed and not yet run or cancelled. */
  get pending(): number {
    return this.#timers.length;
  }

  /** Moves the clock forward by `ms`, running each timer due on the way with the clock at its due time; `between` runs after each. */
  advance(ms: number, between: () => void = () => undefined): void {
    const end = this.now + ms;
    for (;;) {
      const due = this.#timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (due === undefined) break;
      this.#timers = this.#timers.filter((t) => t !== due);
      this.now = Math.max(this.now, due.at);
      due.fn();
      between();
    }
    this.now = end;
  }
}
