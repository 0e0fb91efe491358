/**
 * A small seeded random number generator, so every run, corpus and test is reproducible from its
 * seed. mulberry32: 32-bit state, full period 2^32, fast and good enough for sampling and shuffling
 * (not for cryptography).
 */
/** MurmurHash3's 32-bit finaliser (fmix32) constants (Appleby, MurmurHash3.cpp). */
const FMIX32_MULTIPLIER_1 = 0x85ebca6b;
const FMIX32_MULTIPLIER_2 = 0xc2b2ae35;

/**
 * A seed scrambled by MurmurHash3's finaliser: a bijection of the 32-bit integers (every step — xor with
 * a right shift, multiplication by an odd constant — is invertible mod 2³²), so distinct seeds stay
 * distinct, while neighbouring seeds land far apart. mulberry32's state advances by a constant, so
 * `Random(s + d)` is `Random(s)`'s stream shifted by d·γ⁻¹ mod 2³² draws, a shift that can be small for
 * seeds derived by arithmetic (s·1000 + k); scrambled seeds start the streams at unrelated points.
 */
export function scrambleSeed(seed: number): number {
  let h = seed >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, FMIX32_MULTIPLIER_1);
  h ^= h >>> 13;
  h = Math.imul(h, FMIX32_MULTIPLIER_2);
  h ^= h >>> 16;
  return h >>> 0;
}

export class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** The generator's state, to checkpoint and restore it. */
  get seedState(): number {
    return this.state;
  }

  set seedState(value: number) {
    this.state = value >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('Random.pick: no items');
    return items[this.int(items.length)];
  }

  /** Standard normal (Box–Muller). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Fisher–Yates, in place; returns the array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }
}
