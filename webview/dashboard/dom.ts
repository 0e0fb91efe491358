/** Small DOM helpers shared by the dashboard's views: no framework, no innerHTML. */
import { element } from '../shared/dom';

export { element };

/** A labelled <select>; the label is a real <label for>, so screen readers announce it. */
export function labelledSelect(
  id: string,
  label: string,
  options: readonly { value: string; label: string }[],
  value: string,
  onChange: (value: string) => void,
): HTMLElement {
  const select = element(
    'select',
    { id },
    options.map((option) => element('option', { value: option.value }, [option.label])),
  );
  select.value = value;
  select.addEventListener('change', () => onChange(select.value));
  return element('span', { className: 'control' }, [element('label', { htmlFor: id }, [label]), select]);
}

export function labelledInput(
  id: string,
  label: string,
  props: Partial<HTMLInputElement>,
  onInput: (input: HTMLInputElement) => void,
): HTMLElement {
  const input = element('input', { id, ...props });
  input.addEventListener(props.type === 'checkbox' ? 'change' : 'input', () => onInput(input));
  const labelNode = element('label', { htmlFor: id }, [label]);
  return props.type === 'checkbox'
    ? element('span', { className: 'control' }, [input, labelNode])
    : element('span', { className: 'control' }, [labelNode, input]);
}

export function button(id: string, label: string, title: string, onClick: () => void): HTMLButtonElement {
  const node = element('button', { id, type: 'button', title, className: 'button' }, [label]);
  node.addEventListener('click', onClick);
  return node;
}
