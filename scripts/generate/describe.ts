import type { InputSpec } from '../../shared/core/step';

/** An input's description with what the platform's own input UI cannot say: its type, range and options. */
export function inputHelp(spec: InputSpec): string {
  const extra: string[] = [];
  if (spec.type === 'enum') extra.push(`One of: ${(spec.options ?? []).join(', ')}.`);
  if (spec.type === 'list') extra.push('One value per line.');
  if (spec.type === 'number') {
    const kind = spec.integer ? 'Whole number' : 'Number';
    if (spec.min !== undefined && spec.max !== undefined) extra.push(`${kind} from ${spec.min} to ${spec.max}.`);
    else if (spec.min !== undefined) extra.push(`${kind}, at least ${spec.min}.`);
    else if (spec.max !== undefined) extra.push(`${kind}, at most ${spec.max}.`);
  }
  if (spec.type === 'secret') extra.push('Secret: pass it from a secret store; it is masked in logs.');
  return [spec.description, ...extra].join(' ');
}
