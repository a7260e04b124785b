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
  if (spec.type === 'connection')
    extra.push(
      `Azure DevOps only: a service connection of type ${spec.connection} (the task reads its credentials from the agent; GitHub and the CLI use OIDC or the environment instead).`,
    );
  return [spec.description, ...extra].join(' ');
}
