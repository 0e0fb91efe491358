/**
 * "Export as HTML", the webview's half: serialises the view on screen — the run header and the
 * active tab, charts as PNG images, the heatmap's rows as plain markup rather than the virtual
 * list — and the theme's colours, for the host to wrap into a self-contained page.
 */
import type { DashboardExportHtmlMessage } from '../../src/shared/dashboardMessages';

/** The `--vscode-*` variables in effect, as one `:root` rule. */
export function themeVariables(): string {
  const declarations: string[] = [];
  const collect = (style: CSSStyleDeclaration) => {
    for (let i = 0; i < style.length; i++) {
      const name = style[i];
      if (name.startsWith('--vscode-')) declarations.push(`${name}: ${style.getPropertyValue(name).trim()};`);
    }
  };
  collect(document.documentElement.style);
  if (declarations.length === 0) collect(getComputedStyle(document.documentElement));
  return `:root { ${[...new Set(declarations)].join(' ')} }`;
}

/**
 * @param parts the nodes to export, in order (live nodes: canvases are read from them)
 * @param replacements live node → the node to export instead (the virtual list → static rows)
 */
export function serialiseView(
  title: string,
  parts: readonly HTMLElement[],
  replacements: Map<HTMLElement, HTMLElement>,
): DashboardExportHtmlMessage {
  const markup = parts.map((part) => {
    const clone = part.cloneNode(true) as HTMLElement;
    // Canvases clone empty: draw each one's pixels into an image in the clone.
    const liveCanvases = part.querySelectorAll('canvas');
    clone.querySelectorAll('canvas').forEach((canvas, i) => {
      const live = liveCanvases[i];
      const image = document.createElement('img');
      image.src = live.toDataURL('image/png');
      image.width = live.clientWidth || live.width;
      image.height = live.clientHeight || live.height;
      image.alt = live.closest('[aria-label]')?.getAttribute('aria-label') ?? 'chart';
      canvas.replaceWith(image);
    });
    // Chosen options and typed values live in properties, which cloning does not write into markup.
    const liveFields = part.querySelectorAll<HTMLInputElement | HTMLSelectElement>('input, select');
    clone.querySelectorAll<HTMLInputElement | HTMLSelectElement>('input, select').forEach((field, i) => {
      const live = liveFields[i];
      if (field instanceof HTMLSelectElement)
        field
          .querySelectorAll('option')
          .forEach((option) => option.toggleAttribute('selected', option.value === live.value));
      else if (field.type === 'checkbox') field.toggleAttribute('checked', (live as HTMLInputElement).checked);
      else field.setAttribute('value', live.value);
    });
    for (const [live, replacement] of replacements) {
      if (!part.contains(live)) continue;
      const path: number[] = [];
      for (let node: Element = live; node !== part; node = node.parentElement as Element)
        path.unshift([...(node.parentElement as Element).children].indexOf(node));
      let target: Element = clone;
      for (const index of path) target = target.children[index];
      target.replaceWith(replacement);
    }
    clone.querySelectorAll('[hidden]').forEach((node) => node.remove());
    clone.querySelectorAll('input, select, button').forEach((node) => node.setAttribute('disabled', ''));
    return clone.outerHTML;
  });
  return {
    type: 'dashboard/exportHtml',
    title,
    body: markup.join('\n'),
    themeCss: themeVariables(),
    bodyClass: document.body.className,
  };
}
