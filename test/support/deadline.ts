// Test helper: a bound on how long a test waits for the server to act.

/** Resolves with `p`, or rejects (after `onLate`, which frees what waits) when the server has not acted within `ms`. */
export async function deadline<T>(p: Promise<T>, ms: number, onLate: () => void): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, j) => {
    timer = setTimeout(() => {
      onLate();
      j(new Error(`the server did not close the connection within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}
