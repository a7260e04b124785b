/** `groundTruth` → `ground-truth`, `maxP95Ms` → `max-p95-ms`: GitHub Actions and CLI spelling. */
export function kebabCase(camel: string): string {
  return camel
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .replace(/([A-Z])([A-Z][a-z])/g, '$1-$2')
    .toLowerCase();
}

/** `gate-metrics` → `GateMetrics`: Azure DevOps task names allow only `^[A-Za-z0-9\-]+$` and read best in PascalCase. */
export function pascalCase(kebab: string): string {
  return kebab
    .split('-')
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');
}

/** `ground-truth` → `groundTruth`. */
export function camelCase(kebab: string): string {
  const p = pascalCase(kebab);
  return p.charAt(0).toLowerCase() + p.slice(1);
}

/** Folder of an Azure task: one per major version, as azure-pipelines-tasks does. */
export function azureTaskFolder(stepName: string, major: number): string {
  return `${pascalCase(stepName)}V${major}`;
}

/** Levenshtein distance, for "did you mean" suggestions on a mistyped option, field or value. */
export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length];
}
