/**
 * RFC 8785 (JSON Canonicalization Scheme) for signatures: object keys sorted by UTF-16 code units, no
 * whitespace, strings and numbers as ECMAScript's JSON.stringify writes them (which is what RFC 8785 adopts:
 * shortest round-trip numbers, -0 as 0, the minimal escapes). A signer and a verifier in another language
 * produce the same bytes without sharing a serializer. Values outside I-JSON (RFC 7493) are refused rather
 * than serialised in a way another implementation would not reproduce: NaN and Infinity, lone surrogates.
 * Properties whose value is undefined are left out, as JSON.stringify does.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean') return JSON.stringify(value);
  if (typeof value === 'string') return canonicalString(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`canonical JSON cannot hold the number ${value}`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${canonicalString(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  throw new TypeError(`canonical JSON cannot hold a ${typeof value}`);
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function canonicalString(text: string): string {
  // JSON.stringify escapes a lone surrogate as \udXXX (ES2019); RFC 8785 has no form for it.
  if (LONE_SURROGATE.test(text))
    throw new TypeError(`canonical JSON cannot hold the string ${JSON.stringify(text)}: it has a lone surrogate (not I-JSON)`);
  return JSON.stringify(text);
}
