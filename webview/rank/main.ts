/**
 * The Rank view: K completions of a prompt side by side (rows in a narrow panel), ranked by keyboard
 * (number keys give the focused completion a rank, equal numbers tie; Enter submits, S skips, U
 * undoes) or by dragging a completion onto a rank. With K = 2 a pairwise mode asks "A better / B
 * better / tie". The host owns the data; this page keeps only the ranks being given to the set on
 * screen (in the webview state, so hiding the view does not lose them).
 */
import './rank.css';
import {
  assertNever,
  type FromRankMessage,
  type RankSetView,
  type RankStateMessage,
  type ToRankMessage,
} from '../../src/shared/protocol';
import { rankingFromRanks } from '../../src/shared/rankSet';
import { element } from '../shared/dom';
import { connectToHost } from '../shared/hostChannel';

const host = connectToHost<ToRankMessage, FromRankMessage>();
const app = document.getElementById('app') as HTMLElement;

interface Draft {
  setId: string;
  /** Rank per completion index (1 = best); equal ranks are ties. */
  ranks: (number | undefined)[];
  note: string;
  confidence: string;
  pairwise: boolean;
}

let state: RankStateMessage | undefined;
let draft: Draft | undefined;
let saving = false;
let flash = '';
/** The last confirmation from the host that a judgment is on disk. */
let savedNote = '';

const letter = (position: number) => String.fromCharCode(65 + position);

function button(id: string, label: string, title: string, onClick: () => void, secondary = true): HTMLButtonElement {
  const node = element('button', { id, type: 'button', title, className: secondary ? 'secondary' : 'primary' }, [
    label,
  ]);
  node.addEventListener('click', onClick);
  return node;
}

function saveDraft(): void {
  host.setState(draft);
}

function draftFor(set: RankSetView): Draft {
  if (draft?.setId === set.id) return draft;
  const saved = host.getState<Draft>();
  draft =
    saved?.setId === set.id
      ? saved
      : {
          setId: set.id,
          ranks: set.completions.map(() => undefined),
          note: '',
          confidence: '',
          pairwise: set.completions.length === 2,
        };
  return draft;
}

/** Completion index shown at `position`. */
const shownAt = (set: RankSetView, position: number) => set.shownOrder[position];

function render(): void {
  if (!state) return;
  const focusedPosition = Number((document.activeElement as HTMLElement | null)?.dataset?.position ?? NaN);
  const header = element('div', { className: 'toolbar' }, [
    element('span', { id: 'counter', title: state.file }, [
      state.dataset
        ? `${state.judgments} judgment${state.judgments === 1 ? '' : 's'} in ${state.dataset}`
        : 'No dataset yet',
    ]),
    button('choose-source', 'Source…', 'Choose where completions come from (RLHF: Rank Completions)', () =>
      host.post({ type: 'rank/chooseSource' }),
    ),
  ]);
  const body: Node[] = [header];
  const status = flash || (saving ? 'Saving…' : state.status);
  body.push(
    element('p', { id: 'status', className: state.busy || saving ? 'busy' : 'muted' }, [
      status,
      ...(savedNote ? [element('span', { id: 'saved' }, [savedNote])] : []),
    ]),
  );
  if (state.warnings.length > 0)
    body.push(
      element(
        'ul',
        { id: 'warnings' },
        state.warnings.map((warning) => element('li', { className: 'warning' }, [warning])),
      ),
    );

  const set = state.set;
  if (set && !saving) {
    const current = draftFor(set);
    const k = set.completions.length;
    body.push(
      element('section', { id: 'prompt' }, [
        element('h2', {}, ['Prompt ', element('span', { className: 'muted source' }, [set.sourceLabel])]),
        element('pre', { className: 'text' }, [set.prompt]),
      ]),
    );
    if (k === 2) {
      const toggle = element('label', { className: 'mode' }, [
        element('input', { type: 'checkbox', id: 'pairwise-toggle', checked: current.pairwise }),
        ' Pairwise (A / B / tie)',
      ]);
      toggle.querySelector('input')?.addEventListener('change', (event) => {
        current.pairwise = (event.target as HTMLInputElement).checked;
        saveDraft();
        render();
      });
      body.push(toggle);
    }
    if (!current.pairwise) body.push(renderBuckets(set, current));
    body.push(renderCards(set, current));
    if (current.pairwise) {
      body.push(
        element('div', { id: 'pairwise', className: 'actions' }, [
          button('a-better', 'A is better', 'Key A', () => submitPairwise('a'), false),
          button('tie', 'Tie', 'Key T', () => submitPairwise('tie')),
          button('b-better', 'B is better', 'Key B', () => submitPairwise('b'), false),
        ]),
      );
    }
    body.push(renderFooter(set, current));
  } else if (!set && state.dataset && !state.busy) {
    body.push(
      element('p', { id: 'no-set', className: 'muted' }, [
        'Nothing to rank right now. Choose a source with ',
        element('b', {}, ['Source…']),
        '.',
      ]),
    );
  }
  app.replaceChildren(...body);
  app.setAttribute('aria-busy', String(state.busy || saving));
  if (Number.isInteger(focusedPosition))
    (app.querySelector(`.card[data-position="${focusedPosition}"]`) as HTMLElement | null)?.focus();
}

function renderBuckets(set: RankSetView, current: Draft): HTMLElement {
  const buckets = Array.from({ length: set.completions.length }, (_, r) => {
    const rank = r + 1;
    const members = set.shownOrder
      .map((index, position) => ({ index, position }))
      .filter(({ index }) => current.ranks[index] === rank);
    const bucket = element('div', { className: 'bucket', title: `Drop a completion here to rank it ${rank}` }, [
      element('span', { className: 'bucket-rank' }, [`${rank}`]),
      ...members.map(({ position }) => element('span', { className: 'chip' }, [letter(position)])),
    ]);
    bucket.dataset.rank = String(rank);
    return bucket;
  });
  return element(
    'div',
    {
      id: 'buckets',
      'aria-label': 'Ranks: drop a completion on one; two on the same rank are a tie',
    } as Partial<HTMLDivElement>,
    [element('span', { className: 'muted' }, ['Best']), ...buckets, element('span', { className: 'muted' }, ['Worst'])],
  );
}

function renderCards(set: RankSetView, current: Draft): HTMLElement {
  const identicalTo = (index: number) =>
    set.identical.find((group) => group.includes(index))?.filter((other) => other !== index) ?? [];
  const positionOf = (index: number) => set.shownOrder.indexOf(index);
  const cards = set.shownOrder.map((index, position) => {
    const rank = current.ranks[index];
    const tied = rank !== undefined && current.ranks.filter((other) => other === rank).length > 1;
    const same = identicalTo(index);
    const card = element('article', { className: `card${rank !== undefined ? ' ranked' : ''}`, tabIndex: 0 }, [
      element('header', { className: 'card-header', title: 'Drag onto a rank, or focus and press a number key' }, [
        element('span', { className: 'letter' }, [letter(position)]),
        ...(current.pairwise
          ? []
          : [
              element('span', { className: 'rank-badge' }, [
                rank === undefined ? 'unranked' : `#${rank}${tied ? ' (tie)' : ''}`,
              ]),
            ]),
        ...(same.length
          ? [
              element('span', { className: 'identical', title: 'These completions have exactly the same text' }, [
                `identical to ${same.map((other) => letter(positionOf(other))).join(', ')}`,
              ]),
            ]
          : []),
      ]),
      element('pre', { className: 'text completion' }, [set.completions[index]]),
    ]);
    card.dataset.position = String(position);
    card.dataset.index = String(index);
    card.setAttribute(
      'aria-label',
      `Completion ${letter(position)}${rank === undefined ? ', unranked' : `, rank ${rank}`}`,
    );
    card
      .querySelector('.card-header')
      ?.addEventListener('pointerdown', (event) => startDrag(event as PointerEvent, index));
    return card;
  });
  return element('div', { id: 'cards', className: `cards k${set.completions.length}` }, cards);
}

function renderFooter(set: RankSetView, current: Draft): HTMLElement {
  const note = element('textarea', {
    id: 'note',
    rows: 2,
    placeholder: 'Note (optional): why this order?',
    value: current.note,
  });
  note.addEventListener('input', () => {
    current.note = note.value;
    saveDraft();
  });
  const confidence = element('select', { id: 'confidence', title: 'How sure you are of this judgment' }, [
    element('option', { value: '' }, ['Confidence: not given']),
    ...[0.25, 0.5, 0.75, 1].map((value) =>
      element('option', { value: String(value) }, [`Confidence ${Math.round(value * 100)}%`]),
    ),
  ]);
  confidence.value = current.confidence;
  confidence.addEventListener('change', () => {
    current.confidence = confidence.value;
    saveDraft();
  });
  const unranked = current.ranks.filter((rank) => rank === undefined).length;
  const actions = element('div', { className: 'actions' }, [
    ...(current.pairwise
      ? []
      : [
          button(
            'submit',
            'Submit (Enter)',
            unranked ? `Rank every completion first (${unranked} left)` : 'Save this ranking',
            submitRanking,
            false,
          ),
        ]),
    button('skip', 'Skip (S)', 'Show the next set without judging this one', () =>
      host.post({ type: 'rank/skip', setId: set.id }),
    ),
    button('undo', 'Undo (U)', 'Withdraw the last judgment and rank its set again', () =>
      host.post({ type: 'rank/undo' }),
    ),
  ]);
  (actions.querySelector('#undo') as HTMLButtonElement).disabled = !state?.canUndo;
  if (!current.pairwise) (actions.querySelector('#submit') as HTMLButtonElement).disabled = unranked > 0;
  const hint = current.pairwise
    ? 'Keys: A, B, T (tie) · S skip · U undo'
    : `Keys: 1–${set.completions.length} rank the focused completion (same number = tie), 0 clears, ←/→ move · ` +
      `Enter submit · S skip · U undo`;
  return element('footer', {}, [
    element('div', { className: 'quality' }, [note, confidence]),
    actions,
    element('p', { className: 'muted keys' }, [hint]),
  ]);
}

function setRank(index: number, rank: number | undefined): void {
  if (!draft) return;
  draft.ranks[index] = rank;
  flash = '';
  saveDraft();
  render();
}

function submitRanking(): void {
  if (!state?.set || !draft || saving) return;
  const ranking = rankingFromRanks(draft.ranks);
  if (!ranking) {
    flash = `Rank every completion first (${draft.ranks.filter((rank) => rank === undefined).length} left).`;
    render();
    return;
  }
  send(ranking);
}

function submitPairwise(choice: 'a' | 'b' | 'tie'): void {
  const set = state?.set;
  if (!set || saving) return;
  const [a, b] = [shownAt(set, 0), shownAt(set, 1)];
  send(choice === 'a' ? [[a], [b]] : choice === 'b' ? [[b], [a]] : [[a, b]]);
}

function send(ranking: number[][]): void {
  if (!state?.set || !draft) return;
  const confidence = draft.confidence === '' ? undefined : Number(draft.confidence);
  host.post({
    type: 'rank/submit',
    setId: state.set.id,
    ranking,
    ...(draft.note.trim() ? { note: draft.note.trim() } : {}),
    ...(confidence !== undefined ? { confidence } : {}),
  });
  saving = true;
  render();
}

// ---- Drag: a completion's header onto a rank bucket (pointer events, so mouse, pen and touch work) ----

function startDrag(event: PointerEvent, index: number): void {
  if (event.button !== 0) return;
  event.preventDefault();
  const card = (event.target as HTMLElement).closest('.card') as HTMLElement;
  card.classList.add('dragging');
  let over: HTMLElement | undefined;
  const move = (moveEvent: PointerEvent) => {
    const target = (document.elementFromPoint(moveEvent.clientX, moveEvent.clientY) as HTMLElement | null)?.closest(
      '.bucket',
    ) as HTMLElement | null;
    if (target !== over) {
      over?.classList.remove('drop-target');
      over = target ?? undefined;
      over?.classList.add('drop-target');
    }
  };
  const end = (upEvent: PointerEvent) => {
    window.removeEventListener('pointermove', move);
    window.removeEventListener('pointerup', end);
    card.classList.remove('dragging');
    move(upEvent);
    if (over) setRank(index, Number(over.dataset.rank));
  };
  window.addEventListener('pointermove', move);
  window.addEventListener('pointerup', end);
}

// ---- Keyboard ----

function focusCard(position: number): void {
  (app.querySelector(`.card[data-position="${position}"]`) as HTMLElement | null)?.focus();
}

document.addEventListener('keydown', (event) => {
  const target = event.target as HTMLElement;
  if (target.closest('textarea, input, select') || event.ctrlKey || event.metaKey || event.altKey) {
    if (event.key === 'Escape') target.blur();
    return;
  }
  const set = state?.set;
  if (!set || !draft || saving) return;
  const k = set.completions.length;
  const focused = Number(target.closest<HTMLElement>('.card')?.dataset.position ?? NaN);
  const key = event.key.toLowerCase();
  if (key === 's') host.post({ type: 'rank/skip', setId: set.id });
  else if (key === 'u') {
    if (state?.canUndo) host.post({ type: 'rank/undo' });
  } else if (draft.pairwise && (key === 'a' || key === 'b' || key === 't')) submitPairwise(key === 't' ? 'tie' : key);
  else if (!draft.pairwise && /^[0-9]$/.test(key)) {
    const rank = Number(key);
    if (rank > k) return;
    // No card focused: the first unranked completion in the order shown.
    const position = Number.isInteger(focused)
      ? focused
      : set.shownOrder.findIndex((index) => draft?.ranks[index] === undefined);
    if (position < 0) return;
    setRank(shownAt(set, position), rank === 0 ? undefined : rank);
    if (rank === 0) return focusCard(position);
    const nextUnranked = [...Array(k).keys()]
      .map((step) => (position + 1 + step) % k)
      .find((p) => draft?.ranks[shownAt(set, p)] === undefined);
    focusCard(nextUnranked ?? position);
  } else if (key === 'enter' && !draft.pairwise) submitRanking();
  else if (key === 'arrowright' || key === 'arrowdown') focusCard(Number.isInteger(focused) ? (focused + 1) % k : 0);
  else if (key === 'arrowleft' || key === 'arrowup')
    focusCard(Number.isInteger(focused) ? (focused + k - 1) % k : k - 1);
  else if (key === 'p' && k === 2) {
    draft.pairwise = !draft.pairwise;
    saveDraft();
    render();
  } else return;
  event.preventDefault();
});

host.listen((message) => {
  switch (message.type) {
    case 'rank/state':
      if (state?.set?.id !== message.set?.id) {
        saving = false;
        flash = '';
        draft = undefined;
      }
      state = message;
      if (!message.set) saving = false;
      render();
      break;
    case 'rank/saved':
      // On disk: the set is done with, even if the next one is still being sampled.
      saving = false;
      savedNote = `Saved (${message.judgments} judgment${message.judgments === 1 ? '' : 's'}).`;
      if (state)
        state = {
          ...state,
          judgments: message.judgments,
          set: state.set?.id === message.setId ? undefined : state.set,
        };
      render();
      break;
    default:
      assertNever(message, 'rank webview');
  }
});
