/**
 * A progress bar on stderr for passes over the data: silent for passes shorter than a second,
 * then redrawn in place on a terminal, or printed at 50 % and 100 % when stderr is a file or a
 * pipe, so that logs stay readable. Feed it the library's `onProgress`.
 */
import type { Progress } from '../index.js';

/** Where the bar is written: process.stderr, or a test double. */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressBarOptions {
  /** Number of examples of one pass (when the loader cannot tell). */
  total?: number;
  /** Show nothing until a pass has run this long (default 1000 ms). */
  delayMs?: number;
  stream?: ProgressStream;
  /** Redraw at most this often on a terminal (default 100 ms). */
  intervalMs?: number;
}

export class ProgressBar {
  private readonly label: string;
  private readonly total: number | undefined;
  private readonly delayMs: number;
  private readonly intervalMs: number;
  private readonly stream: ProgressStream;
  private passStart = performance.now();
  private lastDone = 0;
  private pass = 1;
  private lastDraw = 0;
  private printedHalf = 0;
  private visible = false;

  constructor(label: string, options: ProgressBarOptions = {}) {
    this.label = label;
    this.total = options.total;
    this.delayMs = options.delayMs ?? 1000;
    this.intervalMs = options.intervalMs ?? 100;
    this.stream = options.stream ?? process.stderr;
  }

  /** The `onProgress` callback to hand to FIM and friends. */
  readonly onProgress = (p: Progress): void => {
    const now = performance.now();
    // The library reports cumulative examples per pass; a smaller count means a new pass
    // (EKFAC's second pass, each product of a matrix-free matrix).
    if (p.examplesDone < this.lastDone) {
      this.endLine();
      this.pass++;
      this.passStart = now;
      this.printedHalf = 0;
    }
    this.lastDone = p.examplesDone;
    const total = p.examplesTotal ?? this.total;
    if (now - this.passStart < this.delayMs) return;
    if (this.stream.isTTY) {
      if (now - this.lastDraw < this.intervalMs && p.examplesDone !== total) return;
      this.lastDraw = now;
      this.stream.write(`\r${this.render(p.examplesDone, total, now)}`);
      this.visible = true;
    } else if (total) {
      const half = Math.floor((2 * p.examplesDone) / total);
      if (half > this.printedHalf) {
        this.printedHalf = half;
        this.stream.write(`${this.render(p.examplesDone, total, now)}\n`);
      }
    }
  };

  /** Ends the bar's line (call once the computation is over). */
  finish(): void {
    this.endLine();
  }

  private endLine(): void {
    if (this.visible) this.stream.write('\n');
    this.visible = false;
  }

  private render(done: number, total: number | undefined, now: number): string {
    const seconds = ((now - this.passStart) / 1000).toFixed(1);
    const pass = this.pass > 1 ? ` (pass ${this.pass})` : '';
    if (!total) return `${this.label}${pass}: ${done} examples, ${seconds} s`;
    const width = 24;
    const filled = Math.round((width * Math.min(done, total)) / total);
    return `${this.label}${pass} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} examples, ${seconds} s`;
  }
}
