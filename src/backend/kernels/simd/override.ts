/**
 * A module-level setting that tests and benches change for the duration of one call (e.g. a
 * small call size, so that small operands reach the piecewise paths).
 */
export class Override<T> {
  constructor(public value: T) {}

  /** Runs `fn` with the setting at `value`, then restores the previous one (also if `fn` throws). */
  with<R>(value: T, fn: () => R): R {
    const was = this.value;
    this.value = value;
    try {
      return fn();
    } finally {
      this.value = was;
    }
  }
}
