import type { Document } from 'yaml';

/**
 * A parsed YAML document's value, or why it has none. `toJS` expands aliases and throws (a ReferenceError) when
 * a document expands them more often than the yaml library allows ("billion laughs": each alias a list of the
 * one before): that is bad input, reported with the file, never a stack trace.
 */
export type YamlValue = { ok: true; value: unknown } | { ok: false; message: string };

export function yamlValue(doc: Document): YamlValue {
  try {
    return { ok: true, value: doc.toJS({ maxAliasCount: 100 }) as unknown };
  } catch (error) {
    const message = (error as Error).message;
    return {
      ok: false,
      message: /alias/i.test(message)
        ? `its aliases (*name) expand too often (${message}); write the values out instead of nesting aliases`
        : message,
    };
  }
}
