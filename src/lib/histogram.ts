/** A fixed-bucket latency histogram kept as plain counters (cheap on the per-query path, read at scrape time). */
export const LATENCY_BUCKETS_MS = [0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000] as const;

export class Histogram {
  /** counts[i]: observations <= LATENCY_BUCKETS_MS[i] and > the previous bucket; the last slot is +Inf. */
  readonly counts = new Float64Array(LATENCY_BUCKETS_MS.length + 1);
  sum = 0;
  count = 0;

  observe(ms: number): void {
    let i = 0;
    while (i < LATENCY_BUCKETS_MS.length && ms > LATENCY_BUCKETS_MS[i]!) i++;
    this.counts[i]!++;
    this.sum += ms;
    this.count++;
  }

  /** Cumulative counts per upper bound, Prometheus style (the last one is +Inf). */
  cumulative(): number[] {
    const out: number[] = [];
    let acc = 0;
    for (const c of this.counts) out.push((acc += c));
    return out;
  }
}
