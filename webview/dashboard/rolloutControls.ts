/**
 * The Rollouts tab's controls bar — step slider, "follow latest", colour-by, epoch, sort, search and
 * filter — and the choices it holds. The view reads the choices when it draws; the bar calls back
 * when a choice changes what to load or what to draw.
 */
import { tokenFields, type PackedPpoTrace } from '../../src/shared/packedTrace';
import { element, labelledInput, labelledSelect } from './dom';
import { isAbsent } from './notLogged';
import { colourByLabels, type ColourBy } from './tokenView';
import { sampleFieldLabels, type FilterKey, type RowQuery, type SortKey } from './visibleSamples';

export interface RolloutControlsActions {
  /** A step was chosen on the slider, or "follow latest" was ticked again. */
  requestStep(step: number): void;
  /** The colour, the epoch or the row query changed: rows and legend are drawn again. */
  refresh(): void;
}

export class RolloutControls {
  readonly root = element('div', { className: 'controls', id: 'rollout-controls' });
  /** The steps with a trace, oldest first. */
  steps: number[] = [];
  followLatest = true;
  colourBy: ColourBy = 'advantage';
  epoch = -1; // −1: the last epoch
  query: RowQuery = {
    sortKey: 'sample',
    descending: false,
    search: '',
    filterKey: 'score',
    min: -Infinity,
    max: Infinity,
  };

  constructor(private readonly actions: RolloutControlsActions) {}

  setQuery(change: Partial<RowQuery>): void {
    this.query = { ...this.query, ...change };
    this.actions.refresh();
  }

  /** Draws the bar again for the shown trace (its step on the slider, its epochs in the epoch list). */
  render(trace: PackedPpoTrace | undefined): void {
    const index = trace ? Math.max(0, this.steps.indexOf(trace.step)) : Math.max(0, this.steps.length - 1);
    const stepLabel = element('output', { id: 'step-label' }, [
      trace ? `Step ${trace.step} (${index + 1} of ${this.steps.length})` : `${this.steps.length} steps`,
    ]);
    const slider = element('input', {
      id: 'step-slider',
      type: 'range',
      min: '0',
      max: String(Math.max(0, this.steps.length - 1)),
      value: String(index),
      disabled: this.steps.length < 2,
    });
    slider.setAttribute('aria-label', 'Step');
    slider.setAttribute('aria-valuetext', trace ? `Step ${trace.step}` : '');
    slider.addEventListener('input', () => {
      const step = this.steps[Number(slider.value)];
      stepLabel.textContent = `Step ${step} (${Number(slider.value) + 1} of ${this.steps.length})`;
      this.followLatest = Number(slider.value) === this.steps.length - 1 && this.followLatest;
      const follow = document.getElementById('follow-latest') as HTMLInputElement | null;
      if (follow) follow.checked = this.followLatest;
      this.actions.requestStep(step);
    });
    const follow = labelledInput(
      'follow-latest',
      'Follow latest',
      { type: 'checkbox', checked: this.followLatest },
      (input) => {
        this.followLatest = input.checked;
        if (input.checked && this.steps.length > 0) this.actions.requestStep(this.steps.at(-1) as number);
      },
    );
    const numEpochs = trace?.numEpochs ?? 1;
    // A field the trace does not have stays choosable (the legend then says why it is empty), marked so.
    const colourOptions = [...tokenFields, 'ratio', 'clip'].map((value) => ({
      value,
      label: `${colourByLabels[value as ColourBy]}${isAbsent(trace, value as ColourBy) ? ' (not logged)' : ''}`,
    }));
    const epochOptions = [
      { value: '-1', label: 'last' },
      ...Array.from({ length: numEpochs }, (_, e) => ({ value: String(e), label: String(e + 1) })),
    ];
    const sortOptions = (Object.keys(sampleFieldLabels) as SortKey[]).map((value) => ({
      value,
      label: sampleFieldLabels[value],
    }));
    this.root.replaceChildren(
      element('span', { className: 'control step-control' }, [
        element('label', { htmlFor: 'step-slider' }, ['Step']),
        slider,
        stepLabel,
      ]),
      follow,
      labelledSelect('colour-by', 'Colour by', colourOptions, this.colourBy, (value) => {
        this.colourBy = value as ColourBy;
        this.actions.refresh();
      }),
      labelledSelect('epoch', 'Epoch', epochOptions, String(this.epoch), (value) => {
        this.epoch = Number(value);
        this.actions.refresh();
      }),
      labelledSelect('sort-by', 'Sort by', sortOptions, this.query.sortKey, (value) =>
        this.setQuery({ sortKey: value as SortKey }),
      ),
      labelledSelect(
        'sort-order',
        'Order',
        [
          { value: 'asc', label: 'ascending' },
          { value: 'desc', label: 'descending' },
        ],
        this.query.descending ? 'desc' : 'asc',
        (value) => this.setQuery({ descending: value === 'desc' }),
      ),
      labelledInput(
        'search',
        'Search',
        { type: 'search', value: this.query.search, placeholder: 'text in prompt or response' },
        (input) => this.setQuery({ search: input.value }),
      ),
      labelledSelect(
        'filter-by',
        'Filter',
        sortOptions.filter((option) => option.value !== 'sample'),
        this.query.filterKey,
        (value) => this.setQuery({ filterKey: value as FilterKey }),
      ),
      labelledInput(
        'filter-min',
        'min',
        { type: 'number', step: 'any', value: Number.isFinite(this.query.min) ? String(this.query.min) : '' },
        (input) => this.setQuery({ min: input.value === '' ? -Infinity : Number(input.value) }),
      ),
      labelledInput(
        'filter-max',
        'max',
        { type: 'number', step: 'any', value: Number.isFinite(this.query.max) ? String(this.query.max) : '' },
        (input) => this.setQuery({ max: input.value === '' ? Infinity : Number(input.value) }),
      ),
    );
  }
}
