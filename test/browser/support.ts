/** Headless Chromium from Debian's package, driven by playwright-core (no browser download). */

import { chromium, type Browser } from 'playwright-core';

/** Debian's Chromium; NNGEOMETRY_CHROMIUM names another binary. */
export const CHROMIUM = process.env.NNGEOMETRY_CHROMIUM ?? '/usr/bin/chromium';

/**
 * Launches CHROMIUM headless. The flags keep it off the network: this machine's closed
 * network refuses Chromium's background connections, many at a time, and slows the start.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
