/**
 * Yielding to the event loop between batches, so that what waits on it runs during a long pass:
 * timers (`AbortSignal.timeout`, a UI's timeout), abort events raised from other callbacks, I/O
 * and rendering. A microtask (`await Promise.resolve()`, or `for await` over an async generator)
 * is not enough: the event loop only reaches timers once the microtask queue is empty.
 *
 * In Node, `setImmediate` queues a macrotask that runs right after the current poll phase (no
 * clamp); browsers lack it, and their `setTimeout(0)` is clamped to ≥ 4 ms after a few nested
 * calls, so a MessageChannel message (a macrotask without clamp) is used there. Measured cost:
 * docs/performance.md ("Yielding between batches").
 */

let channel: { port: MessagePort; queue: Array<() => void> } | null = null;

/** Resolves on a fresh macrotask, after pending timers and events had a chance to run. */
export function yieldToEventLoop(): Promise<void> {
  if (typeof setImmediate === 'function') return new Promise((resolve) => setImmediate(resolve));
  if (typeof MessageChannel === 'function') {
    if (!channel) {
      const mc = new MessageChannel();
      const queue: Array<() => void> = [];
      mc.port1.onmessage = () => queue.shift()?.();
      channel = { port: mc.port2, queue };
    }
    const c = channel;
    return new Promise((resolve) => {
      c.queue.push(resolve);
      c.port.postMessage(null);
    });
  }
  return new Promise((resolve) => setTimeout(resolve, 0));
}
