/**
 * Retry timing of the link: a small seeded generator (SplitMix64, the same
 * sequence as the Rust one; the caller supplies the seed, so runs replay)
 * and exponential backoff with full jitter, capped, reset by the link after
 * a stable connection. 64-bit arithmetic on two 32-bit halves: no BigInt.
 */

const TWO_32 = 4_294_967_296;

/** a * b mod 2^64 on (hi, lo) halves. */
function mul64(ah: number, al: number, bh: number, bl: number): [number, number] {
  const a0 = al & 0xffff;
  const a1 = al >>> 16;
  const b0 = bl & 0xffff;
  const b1 = bl >>> 16;
  const p00 = a0 * b0;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const p11 = a1 * b1;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  const lo = (((mid & 0xffff) << 16) | (p00 & 0xffff)) >>> 0;
  const carry = p11 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16);
  const hi = (carry + Math.imul(ah, bl) + Math.imul(al, bh)) >>> 0;
  return [hi, lo];
}

/** z ^ (z >> n) for 0 < n < 32, on (hi, lo) halves. */
function xorShift(hi: number, lo: number, n: number): [number, number] {
  return [(hi ^ (hi >>> n)) >>> 0, (lo ^ ((lo >>> n) | (hi << (32 - n)))) >>> 0];
}

/** SplitMix64: tiny, fast, and good enough to spread reconnects. */
export class Rng {
  private hi: number;
  private lo: number;

  /** A generator seeded with `seed`: a whole number below 2^53 (others are truncated into range), or a bigint taken modulo 2^64. */
  constructor(seed: number | bigint) {
    if (typeof seed === "bigint") {
      const s = BigInt.asUintN(64, seed);
      this.hi = Number(s >> 32n);
      this.lo = Number(s & 0xffffffffn);
      return;
    }
    const s = Number.isFinite(seed) && seed > 0 ? Math.floor(seed) % 2 ** 53 : 0;
    this.hi = Math.floor(s / TWO_32) >>> 0;
    this.lo = s >>> 0;
  }

  /** The next 64-bit output as a bigint (tests and tools). */
  nextU64(): bigint {
    const [h, l] = this.nextHalves();
    return (BigInt(h) << 32n) | BigInt(l);
  }

  /** The next 64-bit output as its (high, low) 32-bit halves. */
  nextHalves(): [number, number] {
    const lo = this.lo + 0x7f4a7c15;
    this.lo = lo >>> 0;
    this.hi = (this.hi + 0x9e3779b9 + (lo > 0xffffffff ? 1 : 0)) >>> 0;
    let [h, l] = xorShift(this.hi, this.lo, 30);
    [h, l] = mul64(h, l, 0xbf58476d, 0x1ce4e5b9);
    [h, l] = xorShift(h, l, 27);
    [h, l] = mul64(h, l, 0x94d049bb, 0x133111eb);
    return xorShift(h, l, 31);
  }

  /** The next output's top 53 bits, as an integer below 2^53. */
  next53(): number {
    const [h, l] = this.nextHalves();
    return (h >>> 11) * TWO_32 + ((((h & 0x7ff) << 21) | (l >>> 11)) >>> 0);
  }

  /** Uniform in `0..=max` (the output modulo `max + 1`), for a whole `max` below 2^37. */
  upTo(max: number): number {
    const m = max + 1;
    const [h, l] = this.nextHalves();
    // (h * 2^32 + l) mod m, 16 bits at a time so no product leaves the exact range.
    let r = h % m;
    r = (r * 65_536 + (l >>> 16)) % m;
    r = (r * 65_536 + (l & 0xffff)) % m;
    return r;
  }
}

/**
 * Exponential backoff with full jitter: the n-th consecutive retry waits a
 * uniform time in `0..=min(cap, base * 2^n)`.
 */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly baseMs: number,
    private readonly capMs: number,
  ) {}

  /** The wait before the next attempt, counting it. */
  nextDelay(rng: Rng): number {
    const ceiling = Math.min(this.baseMs * 2 ** Math.min(this.attempt, 40), this.capMs);
    this.attempt += 1;
    return rng.upTo(ceiling);
  }

  /** A stable connection: the next failure starts from `base` again. */
  reset(): void {
    this.attempt = 0;
  }
}
