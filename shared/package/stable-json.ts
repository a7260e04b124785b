/**
 * Stable pretty JSON for the files of a device package (manifest, signature file): keys sorted in UTF-16 code
 * unit order at every level, two-space indent, a final newline, so two builds of the same inputs are byte for
 * byte the same. Not canonical JSON (RFC 8785, shared/core/canonical-json.ts): the package signature covers the
 * exact bytes written, so a reader never re-serialises.
 */
export function stableJson(value: unknown): string {
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
