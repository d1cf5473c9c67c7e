// The check every "refuses … with a MacslotError" table row makes.

import { MacslotError } from 'macslot';
import { expect } from 'vitest';

/** The `code` of the MacslotError `run` throws; the test fails when `run` throws nothing or another kind of error. */
export function thrownCode(run: () => unknown): string {
  let caught: unknown;
  try {
    run();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(MacslotError);
  return (caught as MacslotError).code;
}
