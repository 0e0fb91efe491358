/**
 * The one test for "a JSON object": what every validator of untrusted input (messages, run files) checks
 * before reading fields. A leaf module that imports nothing, so any file in shared/ can use it without a cycle.
 */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
