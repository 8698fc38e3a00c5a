/**
 * When to write: changes are coalesced (the latest state wins) and written
 * `delay` ms after the last change, but never later than four delays after
 * the first unsaved one, so a stream of updates cannot postpone the write
 * forever. Time is an argument; the store owns the timer.
 */
export class Debouncer {
  private first: number | undefined;
  private last = 0;

  constructor(private readonly delay: number) {}

  /** Records a change at `now`. */
  changed(now: number): void {
    this.first ??= now;
    this.last = now;
  }

  /** When the pending write is due, if anything is unsaved. */
  dueAt(): number | undefined {
    return this.first === undefined ? undefined : Math.min(this.last + this.delay, this.first + 4 * this.delay);
  }

  /** Whether there are changes not yet handed to a write. */
  get unsaved(): boolean {
    return this.first !== undefined;
  }

  /** The latest state is being written: nothing is unsaved until the next change (or a failed write). */
  taken(): void {
    this.first = undefined;
  }
}
