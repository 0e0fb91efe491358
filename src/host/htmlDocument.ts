/**
 * The HTML every RLHF Lens page starts with — the webview shell and the exported dashboard page —
 * and the one escaper for text and attribute values in it. Pure string work, no `vscode`.
 */

/** Escapes `&`, `<`, `>` and `"`: safe in text and in double-quoted attribute values. */
export const escapeHtml = (value: string): string =>
  value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export interface HtmlDocumentParts {
  /** The page's Content-Security-Policy (escaped here). */
  readonly contentSecurityPolicy: string;
  /** Markup of the <head> elements after the viewport, in order (the title among them). */
  readonly head: readonly string[];
  /** The <body> element's markup. */
  readonly body: string;
}

/** `<!DOCTYPE html>` through `</html>`, without a final newline. */
export function htmlDocument(parts: HtmlDocumentParts): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(parts.contentSecurityPolicy)}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
${parts.head.join('\n')}
</head>
${parts.body}
</html>`;
}
