import type { Clock } from "../../ports/clock.js";

/**
 * A clock for tests: time moves only when told. `sleep` moves it forward by the requested time and
 * resolves at once, so code that backs off runs instantly while still seeing time pass; every sleep is
 * recorded for assertions on backoff.
 */
export class FakeClock implements Clock {
  readonly sleeps: number[] = [];

  constructor(private current: number = Date.UTC(2026, 0, 1)) {}

  now(): number {
    return this.current;
  }

  async sleep(ms: number): Promise<void> {
    this.sleeps.push(ms);
    this.current += Math.max(0, ms);
  }

  advance(ms: number): void {
    this.current += ms;
  }
}
