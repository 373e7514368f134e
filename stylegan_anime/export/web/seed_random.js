// numpy's legacy RandomState(seed).randn(n) in JavaScript, so that a seed gives the same z here as
// in Python: Mersenne Twister MT19937 seeded by init_genrand (numpy's mt19937_seed for an integer
// seed), 53-bit doubles from two 32-bit draws, and the polar Box-Muller method that keeps its second
// value for the next call (numpy's legacy_gauss). Written from the published algorithms.
"use strict";
(function (root) {
  const N = 624, M = 397;
  const MATRIX_A = 0x9908b0df, UPPER = 0x80000000, LOWER = 0x7fffffff;

  class RandomState {
    /** seed: integer in [0, 2**32). */
    constructor(seed) {
      if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
        throw new RangeError(`seed must be an integer in [0, 2**32), got ${seed}`);
      }
      this.mt = new Uint32Array(N);
      this.mt[0] = seed >>> 0;
      for (let i = 1; i < N; i++) {
        const prev = this.mt[i - 1] ^ (this.mt[i - 1] >>> 30);
        // 1812433253 * prev + i, mod 2**32 (Math.imul keeps the low 32 bits exactly).
        this.mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
      }
      this.index = N;
      this.gauss = null;
    }

    _twist() {
      const mt = this.mt;
      for (let i = 0; i < N; i++) {
        const y = (mt[i] & UPPER) | (mt[(i + 1) % N] & LOWER);
        mt[i] = mt[(i + M) % N] ^ (y >>> 1) ^ ((y & 1) ? MATRIX_A : 0);
      }
      this.index = 0;
    }

    /** The next 32-bit output, as an unsigned integer. */
    nextUint32() {
      if (this.index >= N) this._twist();
      let y = this.mt[this.index++];
      y ^= y >>> 11;
      y ^= (y << 7) & 0x9d2c5680;
      y ^= (y << 15) & 0xefc60000;
      y ^= y >>> 18;
      return y >>> 0;
    }

    /** A double in [0, 1) with 53 random bits (27 from one draw, 26 from the next). */
    randomDouble() {
      const a = this.nextUint32() >>> 5, b = this.nextUint32() >>> 6;
      return (a * 67108864.0 + b) / 9007199254740992.0;
    }

    /** One standard normal value (numpy's legacy polar method, pairs cached). */
    gaussian() {
      if (this.gauss !== null) {
        const g = this.gauss;
        this.gauss = null;
        return g;
      }
      let x1, x2, r2;
      do {
        x1 = 2.0 * this.randomDouble() - 1.0;
        x2 = 2.0 * this.randomDouble() - 1.0;
        r2 = x1 * x1 + x2 * x2;
      } while (r2 >= 1.0 || r2 === 0.0);
      const f = Math.sqrt(-2.0 * Math.log(r2) / r2);
      this.gauss = f * x1;
      return f * x2;
    }

    /** n standard normal values as a Float64Array (RandomState.randn(n)). */
    randn(n) {
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = this.gaussian();
      return out;
    }
  }

  /** z for a seed: RandomState(seed).randn(zDim) rounded to float32, as sa.seeds_to_z gives it. */
  function seedToZ(seed, zDim) {
    return Float32Array.from(new RandomState(seed).randn(zDim));
  }

  root.SeedRandom = { RandomState, seedToZ };
})(typeof window !== "undefined" ? window : globalThis);
