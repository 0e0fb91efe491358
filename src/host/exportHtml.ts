/**
 * "Export as HTML": the dashboard's current view as one self-contained page — the view's markup
 * (charts already turned into images by the webview), the dashboard's stylesheet and the theme's
 * colours inlined, and no script, so it opens anywhere and shows exactly what was on screen.
 */
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

const escapeHtml = (value: string) =>
  value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

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
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<meta name="generator" content="RLHF Lens">
<title>${escapeHtml(parts.title)}</title>
<style>${safeCss(parts.themeCss)}</style>
<style>${safeCss(parts.css)}</style>
</head>
<body class="${escapeHtml(parts.bodyClass)} exported">
<main id="app">
${stripScripts(parts.body)}
</main>
</body>
</html>
`;
}
