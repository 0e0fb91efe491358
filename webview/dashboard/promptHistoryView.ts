/**
 * The "Prompt over time" tab: one prompt's responses at successive steps, side by side, with their
 * scores and tokens coloured like the heatmap's (by the same per-token quantity).
 */
import type { DashboardPromptHistoryMessage, PromptHistoryEntry } from '../../src/shared/dashboardMessages';
import { tokenFields, type PackedPpoTrace, type TokenField } from '../../src/shared/packedTrace';
import { colourOf, divergingScale, formatNumber, themeColours } from './colorScale';
import { button, element, labelledSelect } from './dom';
import { colourByLabels, visibleText } from './tokenView';

export class PromptHistoryView {
  readonly root = element('section', { className: 'prompt-history' });
  private readonly controls = element('div', { className: 'controls' });
  private readonly columns = element('div', { className: 'history-columns', id: 'history-columns' });
  private prompts: string[] = [];
  private chosen = '';
  private field: TokenField = 'reward';
  private entries: readonly PromptHistoryEntry[] = [];

  constructor(private readonly request: (prompt: string) => void) {
    this.root.append(this.controls, this.columns);
    this.renderControls();
  }

  /** Offers the prompts of the step on screen. */
  setTrace(trace: PackedPpoTrace): void {
    this.prompts = [...new Set(trace.prompts)];
    if (!this.chosen && this.prompts.length > 0) this.chosen = this.prompts[0];
    this.renderControls();
  }

  follow(prompt: string): void {
    this.chosen = prompt;
    if (!this.prompts.includes(prompt)) this.prompts.unshift(prompt);
    this.renderControls();
    this.columns.replaceChildren(element('p', { className: 'muted' }, ['Searching every step…']));
    this.request(prompt);
  }

  private renderControls(): void {
    const choices = this.prompts.map((prompt) => ({
      value: prompt,
      label: prompt.length > 60 ? `${prompt.slice(0, 60)}…` : prompt,
    }));
    this.controls.replaceChildren(
      labelledSelect('history-prompt', 'Prompt', choices, this.chosen, (value) => (this.chosen = value)),
      button(
        'history-show',
        'Show across steps',
        'Find this prompt’s responses at every step',
        () => this.chosen && this.follow(this.chosen),
      ),
      labelledSelect(
        'history-colour',
        'Colour by',
        tokenFields.map((value) => ({ value, label: colourByLabels[value] })),
        this.field,
        (value) => {
          this.field = value as TokenField;
          this.renderColumns();
        },
      ),
    );
  }

  setHistory(message: DashboardPromptHistoryMessage): void {
    if (message.prompt !== this.chosen) return;
    this.entries = message.entries;
    this.renderColumns();
  }

  private renderColumns(): void {
    if (this.entries.length === 0) {
      this.columns.replaceChildren(
        element('p', { className: 'muted', id: 'history-empty' }, ['Choose a prompt and press “Show across steps”.']),
      );
      return;
    }
    const all = this.entries.flatMap((entry) => entry.values[this.field]);
    const scale = divergingScale(all, 0, themeColours());
    this.columns.replaceChildren(
      ...this.entries.map((entry) => {
        const text = element('div', { className: 'sample-text' });
        entry.tokens.forEach((token, i) => {
          const shown = visibleText(token);
          const span = element(
            'span',
            {
              className: shown.whitespace ? 'tok ws' : 'tok',
              title: `${colourByLabels[this.field]} ${formatNumber(entry.values[this.field][i])}`,
            },
            [shown.text],
          );
          span.style.backgroundColor = colourOf(scale, entry.values[this.field][i]);
          text.append(span);
          if (shown.newline) text.append(element('br'));
        });
        const oracle = entry.oracleScore === null ? '' : ` · oracle ${formatNumber(entry.oracleScore)}`;
        const column = element('article', { className: 'history-entry' }, [
          element('h3', {}, [`Step ${entry.step}`]),
          element('p', { className: 'muted' }, [
            `sample ${entry.sample} · score ${formatNumber(entry.score)}${oracle}`,
          ]),
          text,
        ]);
        const spokenOracle = entry.oracleScore === null ? '' : `, oracle ${formatNumber(entry.oracleScore)}`;
        column.setAttribute(
          'aria-label',
          `Step ${entry.step}, score ${formatNumber(entry.score)}${spokenOracle}: ${entry.tokens.join('')}`,
        );
        column.tabIndex = 0;
        return column;
      }),
    );
  }
}
