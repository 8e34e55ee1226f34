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

/**
 * Launches CHROMIUM headless with WebGL rendered in software by SwiftShader (through ANGLE on
 * Vulkan), so that tfjs's webgl backend runs where there is no GPU. Debian's Chromium needs
 * `--enable-unsafe-swiftshader` (SwiftShader WebGL is otherwise refused since Chromium 130) and
 * `--ignore-gpu-blocklist`; WebGL 2 with EXT_color_buffer_float gives tfjs float32 textures.
 */
export function launchChromiumWebGL(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--ignore-gpu-blocklist', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
