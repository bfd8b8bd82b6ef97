/**
 * Progress on stderr: a redrawn bar with ETA on a terminal, one plain line per change of
 * label otherwise (so logs stay readable), nothing when quiet.
 */
export class Progress {
  private started = 0;
  private lastLabel = '';
  private lastDraw = 0;
  private drawn = false;

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly quiet: boolean,
  ) {}

  update(label: string, done: number, total: number): void {
    if (this.quiet) return;
    const now = Date.now();
    if (!this.started) this.started = now;
    if (!this.stream.isTTY) {
      const head = label.replace(/ step \d+\/\d+$/, '');
      if (head !== this.lastLabel) {
        this.lastLabel = head;
        this.stream.write(`${head}\n`);
      }
      return;
    }
    if (now - this.lastDraw < 100 && done < total) return;
    this.lastDraw = now;
    const fraction = total > 0 ? Math.min(1, done / total) : 0;
    const width = 24;
    const filled = Math.round(fraction * width);
    const elapsed = (now - this.started) / 1000;
    const eta = fraction > 0 ? (elapsed / fraction) * (1 - fraction) : NaN;
    const etaText = Number.isFinite(eta) ? ` ETA ${formatDuration(eta)}` : '';
    this.stream.write(`\r\x1b[K[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(fraction * 100).toFixed(0)}% ${label}${etaText}`);
    this.drawn = true;
  }

  /** Ends the current bar (a newline on a terminal) and restarts the clock. */
  done(): void {
    if (this.drawn) this.stream.write('\n');
    this.drawn = false;
    this.started = 0;
    this.lastLabel = '';
  }
}

/** A duration for people: "42 s", "3 min 5 s", "2 h 10 min". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  if (seconds < 60) return `${seconds.toFixed(0)} s`;
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return h > 0 ? `${h} h ${m} min` : `${m} min ${Math.round(seconds % 60)} s`;
}
