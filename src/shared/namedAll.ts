/**
 * `Promise.all` over named promises: they run concurrently and the results come back under their names, so a
 * caller never unpacks several results by position.
 */
export async function namedAll<T extends Record<string, Promise<unknown>>>(
  promises: T,
): Promise<{ [K in keyof T]: Awaited<T[K]> }> {
  const names = Object.keys(promises) as (keyof T)[];
  const values = await Promise.all(names.map((name) => promises[name]));
  return Object.fromEntries(names.map((name, i) => [name, values[i]])) as { [K in keyof T]: Awaited<T[K]> };
}
