/**
 * Nesting limit for JSON read from files a user or a network gives us. JSON.parse itself copes with any depth,
 * but every recursive walk after it (summaries, canonical serialisation, schema validators) would overflow the
 * stack on a document nested thousands deep. No document mlship reads needs more than a dozen levels (COCO
 * polygons are 4 deep), so 64 leaves room without a walk ever coming near the stack.
 */
export const MAX_JSON_DEPTH = 64;

/**
 * Offset of the bracket that first goes deeper than `limit` in JSON text, or -1 when none does. One pass that
 * follows strings, so brackets inside them do not count; it does not validate anything else.
 */
export function jsonDepthViolation(text: string, limit = MAX_JSON_DEPTH): number {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return i;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return -1;
}

/** The message for a too-deep document, one wording everywhere. */
export function jsonDepthMessage(limit = MAX_JSON_DEPTH): string {
  return `it is nested more than ${limit} levels deep`;
}

/**
 * JSON.parse behind the depth limit, for documents from files or the network. Throws a SyntaxError, as
 * JSON.parse does, so a caller's "is not valid JSON" message covers both.
 */
export function parseJsonBounded(text: string, limit = MAX_JSON_DEPTH): unknown {
  const at = jsonDepthViolation(text, limit);
  if (at !== -1) throw new SyntaxError(`${jsonDepthMessage(limit)} (at character ${at})`);
  return JSON.parse(text);
}
