/**
 * Seeded probe vectors on the host. The estimators need E[z zᵀ] = I: Rademacher signs (±1,
 * the lowest-variance choice for Hutchinson, Hutchinson 1989) or standard normals. The stream
 * is a splitmix32 generator (Steele, Lea & Flood 2014), so a seed gives the same probes on
 * every backend and platform.
 */
export type ProbeDistribution = 'rademacher' | 'normal';

/** A deterministic stream of uniform numbers in [0, 1). */
export class ProbeStream {
  private state: number;
  private spare: number | null = null;

  constructor(seed: number) {
    // Mix the (possibly large) integer seed into 32 bits.
    this.state = (Math.imul(seed | 0, 0x9e3779b9) ^ Math.floor(seed / 2 ** 32) ^ 0x85ebca6b) >>> 0;
  }

  uniform(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return ((z ^ (z >>> 16)) >>> 0) / 2 ** 32;
  }

  /** A standard normal (Box–Muller, both values used). */
  normal(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    const u = 1 - this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    const t = 2 * Math.PI * this.uniform();
    this.spare = r * Math.sin(t);
    return r * Math.cos(t);
  }

  /** A probe of length d with E[z zᵀ] = I. */
  probe(d: number, distribution: ProbeDistribution): Float64Array {
    const z = new Float64Array(d);
    if (distribution === 'rademacher') for (let i = 0; i < d; i++) z[i] = this.uniform() < 0.5 ? -1 : 1;
    else for (let i = 0; i < d; i++) z[i] = this.normal();
    return z;
  }
}
