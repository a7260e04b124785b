import type { InputSpecs } from './step';

type Merged<F extends readonly InputSpecs[]> = F extends readonly [infer H extends InputSpecs, ...infer R extends readonly InputSpecs[]]
  ? H & Merged<R>
  : unknown;
type Flat<T> = { [K in keyof T]: T[K] };

/**
 * Joins input fragments (store inputs, cloud inputs, a step's own) into one `inputs` object. Object spread
 * would let a later fragment silently replace an input of an earlier one (one `region` meaning two things);
 * this throws when the step is defined, so the clash is found by any test that loads the step.
 */
export function mergeInputs<const F extends readonly InputSpecs[]>(...fragments: F): Flat<Merged<F>> {
  const merged: Record<string, InputSpecs[string]> = {};
  const from = new Map<string, number>();
  fragments.forEach((fragment, index) => {
    for (const [key, spec] of Object.entries(fragment)) {
      if (from.has(key)) {
        throw new Error(
          `Input "${key}" is defined twice: by input fragment ${from.get(key)! + 1} and by fragment ${index + 1} of mergeInputs(). Rename one of them or leave it out of one fragment (pickInputs / omitInputs).`,
        );
      }
      from.set(key, index);
      merged[key] = spec;
    }
  });
  return merged as Flat<Merged<F>>;
}

/** The inputs `keys` of a shared fragment, for a step that needs only some of them. */
export function pickInputs<const I extends InputSpecs, const K extends keyof I & string>(fragment: I, ...keys: K[]): Flat<Pick<I, K>> {
  for (const key of keys) if (!(key in fragment)) throw new Error(`pickInputs(): the fragment has no input "${key}".`);
  return Object.fromEntries(keys.map((k) => [k, fragment[k]])) as Flat<Pick<I, K>>;
}

/** A shared fragment without `keys`, for a step that defines those inputs its own way. */
export function omitInputs<const I extends InputSpecs, const K extends keyof I & string>(fragment: I, ...keys: K[]): Flat<Omit<I, K>> {
  for (const key of keys) if (!(key in fragment)) throw new Error(`omitInputs(): the fragment has no input "${key}".`);
  return Object.fromEntries(Object.entries(fragment).filter(([k]) => !(keys as string[]).includes(k))) as Flat<Omit<I, K>>;
}
