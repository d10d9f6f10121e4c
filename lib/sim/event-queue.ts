/**
 * A binary min-heap of timed events. Events at the same time come out by `order` (smaller first),
 * then in the order they were pushed, so a replay never depends on heap internals.
 */
export interface TimedEvent {
  timeMs: number;
  /** Tie-break at equal times: job ends (0) before node readiness (1). */
  order: number;
}

interface Entry<E> {
  event: E;
  seq: number;
}

export class EventQueue<E extends TimedEvent> {
  private readonly heap: Entry<E>[] = [];
  private seq = 0;

  get size(): number {
    return this.heap.length;
  }

  push(event: E): void {
    this.heap.push({ event, seq: this.seq++ });
    this.up(this.heap.length - 1);
  }

  /** The earliest event's time, or +Infinity when empty. */
  peekTime(): number {
    return this.heap[0]?.event.timeMs ?? Number.POSITIVE_INFINITY;
  }

  pop(): E | undefined {
    const top = this.heap[0];
    const last = this.heap.pop();
    if (top === undefined || last === undefined) return undefined;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      this.down(0);
    }
    return top.event;
  }

  private less(a: Entry<E>, b: Entry<E>): boolean {
    return (
      a.event.timeMs < b.event.timeMs ||
      (a.event.timeMs === b.event.timeMs &&
        (a.event.order < b.event.order || (a.event.order === b.event.order && a.seq < b.seq)))
    );
  }

  private up(i: number): void {
    const h = this.heap;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i] as Entry<E>, h[p] as Entry<E>)) break;
      [h[i], h[p]] = [h[p] as Entry<E>, h[i] as Entry<E>];
      i = p;
    }
  }

  private down(i: number): void {
    const h = this.heap;
    const n = h.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.less(h[l] as Entry<E>, h[m] as Entry<E>)) m = l;
      if (r < n && this.less(h[r] as Entry<E>, h[m] as Entry<E>)) m = r;
      if (m === i) return;
      [h[i], h[m]] = [h[m] as Entry<E>, h[i] as Entry<E>];
      i = m;
    }
  }
}
