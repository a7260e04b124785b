/**
 * One fixed serialisation for signed documents: keys sorted in UTF-16 code unit order (JavaScript's default sort) at every level, two-space
 * indent, a final newline. Numbers use JavaScript's shortest round-trip form. The signature covers
 * the exact bytes written, so a reader never re-serialises; this only makes builds reproducible.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value), null, 2) + '\n';
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = sortKeys(v);
    }
    return out;
  }
  return value;
}
