/**
 * A terminal progress bar for headless training: one redrawn line on a TTY, a plain line every 10%
 * otherwise (so CI logs stay readable).
 */
export class ProgressBar {
  private readonly started = Date.now();
  private lastPrintedDecile = -1;

  constructor(
    private readonly label: string,
    private total: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {}

  /** `total` updates the step count when a stage learns it only after loading its data. */
  update(done: number, detail: string, total = this.total): void {
    this.total = Math.max(1, total);
    const fraction = Math.min(1, done / Math.max(1, this.total));
    const elapsed = (Date.now() - this.started) / 1000;
    const eta = done > 0 ? (elapsed / done) * (this.total - done) : NaN;
    const text =
      `${this.label} ${done}/${this.total} ` + `${detail}${Number.isFinite(eta) ? ` · ETA ${formatSeconds(eta)}` : ''}`;
    if (this.stream.isTTY) {
      const width = 24;
      const filled = Math.round(fraction * width);
      this.stream.write(
        `\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${text}`
          .slice(0, (this.stream.columns ?? 120) - 1)
          .padEnd(Math.min(this.stream.columns ?? 120, 160) - 1),
      );
      return;
    }
    const decile = Math.floor(fraction * 10);
    if (decile > this.lastPrintedDecile) {
      this.lastPrintedDecile = decile;
      this.stream.write(`[${String(Math.round(fraction * 100)).padStart(3)}%] ${text}\n`);
    }
  }

  finish(detail: string): void {
    if (this.stream.isTTY) this.stream.write('\n');
    this.stream.write(`${this.label} done in ${formatSeconds((Date.now() - this.started) / 1000)} ${detail}\n`);
  }
}

export function formatSeconds(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(0)}s`;
  const minutes = Math.floor(seconds / 60);
  return minutes < 60
    ? `${minutes}m${String(Math.round(seconds % 60)).padStart(2, '0')}s`
    : `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}
