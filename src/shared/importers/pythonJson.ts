/**
 * JSON as Python's `json.dumps` writes it by default (`allow_nan=True`): besides standard JSON it may hold the
 * bare tokens `NaN`, `Infinity` and `-Infinity` (a loss or gradient norm that blew up), which `JSON.parse`
 * rejects. This parses such text, turning those tokens into the numbers they name. Pure: no Node built-ins.
 */

const sentinel = '\u0000py:';
const pythonNumbers: Record<string, number> = {
  NaN: Number.NaN,
  Infinity: Number.POSITIVE_INFINITY,
  '-Infinity': Number.NEGATIVE_INFINITY,
};

/** `text` with every NaN/Infinity/-Infinity outside a string replaced by a sentinel string. */
function quotePythonNumbers(text: string): string {
  if (!/NaN|Infinity/.test(text)) return text;
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (inString) {
      out += char;
      if (char === '\\') out += text[++i] ?? '';
      else if (char === '"') inString = false;
      continue;
    }
    if (char === '"') {
      inString = true;
      out += char;
      continue;
    }
    const token = ['-Infinity', 'Infinity', 'NaN'].find((name) => text.startsWith(name, i));
    if (token) {
      out += JSON.stringify(sentinel + token);
      i += token.length - 1;
    } else out += char;
  }
  return out;
}

/** `JSON.parse`, accepting Python's NaN, Infinity and -Infinity; throws a SyntaxError on anything else bad. */
export function parsePythonJson(text: string): unknown {
  return JSON.parse(quotePythonNumbers(text), (_key, value: unknown) =>
    typeof value === 'string' && value.startsWith(sentinel) ? pythonNumbers[value.slice(sentinel.length)] : value,
  );
}
