/**
 * The one seeded pseudo-random generator of the tests and benchmarks (mulberry32): the same numbers on every run
 * and every Node version, so a generated case that fails reproduces.
 */

/** Uniform numbers in [0, 1), determined by `seed` (a 32-bit integer). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
