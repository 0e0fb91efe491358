/**
 * "Export as HTML": the dashboard's current view as one self-contained page — the view's markup
 * (charts already turned into images by the webview), the dashboard's stylesheet and the theme's
 * colours inlined, and no script, so it opens anywhere and shows exactly what was on screen.
 */
import { escapeHtml, htmlDocument } from './htmlDocument';

export interface ExportHtmlParts {
  readonly title: string;
  /** The view's markup, as the webview serialised it. */
  readonly body: string;
  /** `:root { --vscode-…: … }` from the webview, so the page keeps its theme. */
  readonly themeCss: string;
  readonly bodyClass: string;
  /** dist/webview/dashboard.css. */
  readonly css: string;
}

/** `</style` inside inlined CSS would end the element early. */
const safeCss = (css: string) => css.replace(/<\/style/gi, '<\\/style');

/** Removes anything executable a serialised view could carry (it comes from a webview). */
export function stripScripts(markup: string): string {
  return markup
    .replace(/<script\b[\s\S]*?<\/script\s*>/gi, '')
    .replace(/<script\b[^>]*>/gi, '')
    .replace(/\son[a-z]+\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)/gi, '')
    .replace(/(href|src)\s*=\s*(["'])\s*javascript:[^"']*\2/gi, '$1=$2#$2');
}

export function buildExportHtml(parts: ExportHtmlParts): string {
  const page = htmlDocument({
    contentSecurityPolicy: "default-src 'none'; img-src data:; style-src 'unsafe-inline'",
    head: [
      '<meta name="generator" content="RLHF Lens">',
      `<title>${escapeHtml(parts.title)}</title>`,
      `<style>${safeCss(parts.themeCss)}</style>`,
      `<style>${safeCss(parts.css)}</style>`,
    ],
    body: `<body class="${escapeHtml(parts.bodyClass)} exported">
<main id="app">
${stripScripts(parts.body)}
</main>
</body>`,
  });
  // A file on disk: it ends with a newline.
  return `${page}\n`;
}
