import type { BootstrapResult } from '../../metrics/bootstrap';
import type { ClassScore } from './scores';

export interface GateRules {
  readonly minMetric?: number;
  readonly maxDrop?: number;
  readonly maxClassDrop?: number;
  readonly margin?: number;
}

export type RuleName = 'floor' | 'max-drop' | 'class-drop' | 'non-inferiority';

export interface RuleResult {
  readonly rule: RuleName;
  /** The limit as the user set it, e.g. "AP ≥ 0.4500". */
  readonly limit: string;
  /** What was measured. */
  readonly observed: string;
  readonly passed: boolean;
  /** Why it failed, naming the numbers and the limit. */
  readonly failure?: string;
}

export interface ClassRow {
  readonly id: number | string;
  readonly name: string;
  readonly candidate: number | null;
  readonly production: number | null;
  readonly delta: number | null;
  /** Verdict of the per-class rule: pass, fail, or '' when not checked. */
  readonly verdict: 'pass' | 'fail' | '';
}

export interface GateInput {
  readonly metric: string;
  readonly candidate: number;
  readonly production?: number;
  readonly candidateClasses: readonly ClassScore[];
  readonly productionClasses?: readonly ClassScore[] | null;
  readonly bootstrap?: BootstrapResult;
  readonly rules: GateRules;
  /** How the user spells an input, for messages. */
  readonly label: (key: string) => string;
}

export interface GateOutcome {
  readonly passed: boolean;
  readonly results: RuleResult[];
  readonly classes: ClassRow[];
}

/** Slack for comparisons, so 0.45 computed as 0.44999999999999996 still meets a floor of 0.45. */
const SLACK = 1e-12;
export const fmt = (v: number | null | undefined, digits = 4) =>
  v === null || v === undefined || Number.isNaN(v) ? 'n/a' : v.toFixed(digits);

export function applyRules(g: GateInput): GateOutcome {
  const { metric, rules, label } = g;
  const results: RuleResult[] = [];
  if (rules.minMetric !== undefined) {
    const ok = g.candidate >= rules.minMetric - SLACK;
    results.push({
      rule: 'floor',
      limit: `${metric} ≥ ${fmt(rules.minMetric)}`,
      observed: fmt(g.candidate),
      passed: ok,
      failure: ok
        ? undefined
        : `floor: candidate ${metric} ${fmt(g.candidate)} is below the minimum ${fmt(rules.minMetric)} (${label('minMetric')}).`,
    });
  }
  if (rules.maxDrop !== undefined && g.production !== undefined) {
    const drop = g.production - g.candidate;
    const ok = drop <= rules.maxDrop + SLACK;
    results.push({
      rule: 'max-drop',
      limit: `drop ≤ ${fmt(rules.maxDrop)}`,
      observed: `${fmt(g.production)} → ${fmt(g.candidate)} (${drop > 0 ? '−' : '+'}${fmt(Math.abs(drop))})`,
      passed: ok,
      failure: ok
        ? undefined
        : `max-drop: ${metric} fell by ${fmt(drop)} (production ${fmt(g.production)} → candidate ${fmt(g.candidate)}), more than the allowed ${fmt(rules.maxDrop)} (${label('maxDrop')}).`,
    });
  }
  const classes = classRows(g);
  if (rules.maxClassDrop !== undefined && g.productionClasses) {
    const failing = classes.filter((c) => c.verdict === 'fail');
    const worst = failing.slice().sort((a, b) => (a.delta ?? 0) - (b.delta ?? 0))[0];
    const checked = classes.filter((c) => c.verdict !== '').length;
    results.push({
      rule: 'class-drop',
      limit: `every class drop ≤ ${fmt(rules.maxClassDrop)}`,
      observed: failing.length ? `${failing.length} of ${checked} classes dropped more` : `${checked} classes within`,
      passed: failing.length === 0,
      failure: worst
        ? `class-drop: class "${worst.name}" (id ${worst.id}) ${metric} fell by ${fmt(-(worst.delta ?? 0))} (production ${fmt(worst.production)} → candidate ${fmt(worst.candidate)}), more than the allowed ${fmt(rules.maxClassDrop)} (${label('maxClassDrop')})${
            failing.length > 1
              ? `; ${failing.length - 1} more class(es) too: ${failing
                  .filter((c) => c !== worst)
                  .map((c) => c.name)
                  .join(', ')}`
              : ''
          }.`
        : undefined,
    });
  }
  if (rules.margin !== undefined && g.bootstrap) {
    const b = g.bootstrap;
    const ok = b.lower >= -rules.margin - SLACK;
    const pct = `${Math.round(b.confidence * 1000) / 10}%`;
    results.push({
      rule: 'non-inferiority',
      limit: `CI lower bound ≥ −${fmt(rules.margin)}`,
      observed: `${fmt(b.difference)} [${fmt(b.lower)}, ${fmt(b.upper)}]`,
      passed: ok,
      failure: ok
        ? undefined
        : `non-inferiority: the ${pct} bootstrap interval of ${metric} (candidate − production) is [${fmt(b.lower)}, ${fmt(b.upper)}] (${b.resamples} resamples, seed ${b.seed}); its lower bound ${fmt(b.lower)} is below −${fmt(rules.margin)}, the allowed margin (${label('margin')}).`,
    });
  }
  return { passed: results.every((r) => r.passed), results, classes };
}

function classRows(g: GateInput): ClassRow[] {
  const prod = new Map<string, ClassScore>();
  for (const c of g.productionClasses ?? []) prod.set(String(c.id), c);
  return g.candidateClasses.map((c) => {
    const p = g.productionClasses ? prod.get(String(c.id)) : undefined;
    const production = p?.value ?? null;
    const delta = c.value !== null && production !== null ? c.value - production : null;
    let verdict: ClassRow['verdict'] = '';
    if (g.rules.maxClassDrop !== undefined && delta !== null) verdict = -delta <= g.rules.maxClassDrop + SLACK ? 'pass' : 'fail';
    return { id: c.id, name: c.name, candidate: c.value, production, delta, verdict };
  });
}
