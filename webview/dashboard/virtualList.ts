/**
 * A vertically virtualised list of rows of varying height: only the rows in (or near) the viewport
 * exist in the DOM, positioned by prefix sums of their heights. Heights start as estimates and are
 * replaced by measurements as rows are drawn, so 1,024 rows of 256 tokens cost what a screenful costs.
 * Keyboard: one row is in the tab order (roving tabindex); ↑/↓, Page Up/Down, Home/End move it.
 */

export interface VirtualListOptions {
  readonly count: number;
  readonly estimateHeight: (index: number) => number;
  readonly renderRow: (index: number) => HTMLElement;
  /** Enter or a double click on a row. */
  readonly onActivate?: (index: number) => void;
  /** Pixels drawn beyond the viewport on each side. */
  readonly overscan?: number;
}

export class VirtualList {
  readonly viewport: HTMLElement;
  private readonly spacer: HTMLElement;
  private heights: Float64Array;
  private offsets: Float64Array;
  private readonly rendered = new Map<number, HTMLElement>();
  /** 1 where heights[i] is a measurement, not an estimate. */
  private measured: Uint8Array;
  private frame = 0;
  private active = 0;
  private width = 0;

  constructor(private readonly options: VirtualListOptions) {
    this.viewport = document.createElement('div');
    this.viewport.className = 'virtual-viewport';
    this.viewport.setAttribute('role', 'list');
    this.spacer = document.createElement('div');
    this.spacer.className = 'virtual-spacer';
    this.viewport.append(this.spacer);
    this.heights = Float64Array.from({ length: options.count }, (_, i) => options.estimateHeight(i));
    this.measured = new Uint8Array(options.count);
    this.offsets = new Float64Array(options.count + 1);
    this.recomputeOffsets();
    this.viewport.addEventListener('scroll', () => this.schedule());
    this.viewport.addEventListener('keydown', (event) => this.onKey(event));
    this.viewport.addEventListener('dblclick', (event) => {
      const row = (event.target as HTMLElement).closest<HTMLElement>('[data-index]');
      if (row) options.onActivate?.(Number(row.dataset.index));
    });
    // A new width rewraps every row: measure again as rows are drawn.
    new ResizeObserver(() => {
      if (this.viewport.clientWidth !== this.width) {
        this.width = this.viewport.clientWidth;
        this.measured.fill(0);
      }
      this.schedule();
    }).observe(this.viewport);
  }

  /** The row in the tab order. */
  get activeIndex(): number {
    return this.active;
  }

  get count(): number {
    return this.options.count;
  }

  /** The rows in the DOM now, by index (tests and the export read them). */
  renderedIndices(): number[] {
    return [...this.rendered.keys()].sort((a, b) => a - b);
  }

  private recomputeOffsets(): void {
    for (let i = 0; i < this.options.count; i++) this.offsets[i + 1] = this.offsets[i] + this.heights[i];
    this.spacer.style.height = `${this.offsets[this.options.count]}px`;
  }

  /** First index whose bottom edge is below `y`. */
  private indexAt(y: number): number {
    let lo = 0;
    let hi = this.options.count - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.offsets[mid + 1] <= y) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  /** Draws the rows in view now (synchronously); returns how many are in the DOM. */
  render(): number {
    const count = this.options.count;
    if (count === 0) return 0;
    const overscan = this.options.overscan ?? 400;
    const top = this.viewport.scrollTop - overscan;
    const bottom = this.viewport.scrollTop + (this.viewport.clientHeight || 600) + overscan;
    // Two passes at most: measuring replaced estimates may shift which rows are in view.
    for (let pass = 0; pass < 2; pass++) {
      const first = this.indexAt(Math.max(0, top));
      let last = first;
      while (last < count - 1 && this.offsets[last + 1] < bottom) last++;
      for (const [index, row] of this.rendered) {
        if ((index < first || index > last) && index !== this.active) {
          row.remove();
          this.rendered.delete(index);
        }
      }
      for (let i = first; i <= last; i++) {
        if (this.rendered.has(i)) continue;
        const row = this.options.renderRow(i);
        row.dataset.index = String(i);
        row.setAttribute('role', 'listitem');
        row.setAttribute('aria-posinset', String(i + 1));
        row.setAttribute('aria-setsize', String(count));
        row.classList.add('virtual-row');
        row.tabIndex = i === this.active ? 0 : -1;
        row.style.top = `${this.offsets[i]}px`;
        this.viewport.append(row);
        this.rendered.set(i, row);
      }
      // Rows drawn while the list was hidden (another tab) measure 0: they are measured when shown.
      let changed = false;
      for (const [i, row] of this.rendered) {
        if (this.measured[i]) continue;
        const height = row.offsetHeight;
        if (height === 0) continue;
        this.measured[i] = 1;
        if (Math.abs(height - this.heights[i]) > 0.5) {
          this.heights[i] = height;
          changed = true;
        }
      }
      if (!changed) break;
      this.recomputeOffsets();
      for (const [index, row] of this.rendered) row.style.top = `${this.offsets[index]}px`;
    }
    return this.rendered.size;
  }

  /** Makes row `index` the focusable one, scrolls it into view and focuses it. */
  focusRow(index: number): void {
    const count = this.options.count;
    if (count === 0) return;
    const target = Math.max(0, Math.min(count - 1, index));
    this.rendered.get(this.active)?.setAttribute('tabindex', '-1');
    this.active = target;
    const top = this.offsets[target];
    const bottom = this.offsets[target + 1];
    if (top < this.viewport.scrollTop) this.viewport.scrollTop = top;
    else if (bottom > this.viewport.scrollTop + this.viewport.clientHeight)
      this.viewport.scrollTop = bottom - this.viewport.clientHeight;
    this.render();
    const row = this.rendered.get(target);
    row?.setAttribute('tabindex', '0');
    row?.focus({ preventScroll: true });
  }

  private onKey(event: KeyboardEvent): void {
    const page = Math.max(1, Math.floor(this.viewport.clientHeight / Math.max(1, this.heights[this.active] || 60)));
    const moves: Record<string, number> = {
      ArrowDown: this.active + 1,
      ArrowUp: this.active - 1,
      PageDown: this.active + page,
      PageUp: this.active - page,
      Home: 0,
      End: this.options.count - 1,
    };
    if (event.key in moves) {
      event.preventDefault();
      this.focusRow(moves[event.key]);
    } else if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      this.options.onActivate?.(this.active);
    }
  }
}
