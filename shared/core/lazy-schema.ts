import type { Options, ValidateFunction } from 'ajv';

/**
 * A JSON-schema validator compiled on first use, with ajv itself loaded then. Compiling at module load made every
 * process that loads the step modules (the CLI's --help included) pay ~0.35 s for schemas it never checks
 * (measured with --cpu-prof).
 */
export function lazySchema(schema: object, options: Options): () => ValidateFunction {
  let compiled: ValidateFunction | undefined;
  return () => {
    if (!compiled) {
      const Ajv = (require('ajv') as typeof import('ajv')).default;
      compiled = new Ajv(options).compile(schema);
    }
    return compiled;
  };
}
