// Headless Chromium for the browser tests: where it is, whether a run must have it, and how it is started.
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** The Chromium the browser tests run (CHROMIUM_PATH, default Debian's). */
export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Whether that Chromium is installed. */
export const chromiumPresent = existsSync(chromiumPath);
/** CI sets this so a missing browser fails the run instead of passing it silently as a skip. */
export const chromiumRequired = process.env.MACSLOT_REQUIRE_BROWSER === '1' || process.env.CI === 'true';

// Without these flags Chromium keeps reaching for update, sync and QUIC endpoints the sandboxed network does not have.
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Throws, saying how to install it, when the browser a run requires is missing. */
export function requireChromium(): void {
  if (!chromiumPresent)
    throw new Error(
      `a browser is required (CI=true or MACSLOT_REQUIRE_BROWSER=1) but there is no Chromium at ${chromiumPath} (set CHROMIUM_PATH, or ` +
        'apt-get install chromium)',
    );
}

/** Starts headless Chromium without its background network traffic. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath, args: ARGS, timeout: 20_000 });
}
