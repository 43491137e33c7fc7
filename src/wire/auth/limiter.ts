/** Failed logins per client address in a sliding minute: past the limit, further attempts are refused at once. */
export class FailureLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(private readonly perMinute: number) {}

  /** True when the address has used up its failures for the last minute. */
  blocked(address: string, now = Date.now()): boolean {
    if (this.perMinute <= 0) return false;
    const list = this.recent(address, now);
    return list !== undefined && list.length >= this.perMinute;
  }

  record(address: string, now = Date.now()): void {
    if (this.perMinute <= 0) return;
    const list = this.recent(address, now) ?? [];
    list.push(now);
    this.failures.set(address, list);
    // Bound memory under a flood of distinct addresses: forget the oldest entries.
    if (this.failures.size > 100_000) {
      const first = this.failures.keys().next().value;
      if (first !== undefined) this.failures.delete(first);
    }
  }

  private recent(address: string, now: number): number[] | undefined {
    const list = this.failures.get(address);
    if (list === undefined) return undefined;
    while (list.length > 0 && now - list[0]! > 60_000) list.shift();
    if (list.length === 0) {
      this.failures.delete(address);
      return undefined;
    }
    return list;
  }
}
