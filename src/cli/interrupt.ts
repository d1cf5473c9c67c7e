// Command line: cleanup that runs however a command ends early, so no partial output outlives it.

const SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * Arms `cleanup` (synchronous, never throwing) until the returned function disarms it: on SIGINT,
 * SIGTERM or SIGHUP it runs and the process then ends by that same signal, as the shell expects;
 * on any other exit (process.exit(), an uncaught error) it runs before the process goes. Signals are
 * handled when the event loop runs, so long loops must yield to it now and then.
 */
export function onInterrupt(cleanup: () => void): () => void {
  const onSignal = (signal: NodeJS.Signals): void => {
    disarm();
    try {
      cleanup();
    } finally {
      // Re-raised with the default action restored, even if cleanup failed (a signal is never lost);
      // process.exit() would first wait for reads blocked on an idle FIFO.
      process.kill(process.pid, signal);
    }
  };
  const disarm = (): void => {
    for (const s of SIGNALS) process.off(s, onSignal);
    process.off('exit', cleanup);
  };
  for (const s of SIGNALS) process.once(s, onSignal);
  process.once('exit', cleanup);
  return disarm;
}

/** Resolves after the event loop has run once, so pending signals are handled. */
export function yieldToEvents(): Promise<void> {
  return new Promise((ok) => setImmediate(ok));
}
