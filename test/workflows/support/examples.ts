import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT } from '../../support/runners';
import { type GithubCheckContext, parseWorkflowYaml, type Workflow } from './github-check';
import { loadGithubParser } from './github-parser';
import { loadStepCatalog } from './step-definitions';

export const GITHUB_DIR = path.join(ROOT, 'workflows-examples', 'github');
export const AZURE_DIR = path.join(ROOT, 'workflows-examples', 'azure-devops');

export function githubExamples(): { file: string; text: string }[] {
  return fs
    .readdirSync(GITHUB_DIR)
    .filter((f) => f.endsWith('.yml'))
    .sort()
    .map((file) => ({ file, text: fs.readFileSync(path.join(GITHUB_DIR, file), 'utf8') }));
}

/**
 * Reusable workflows are resolved by file name among the examples: the caller's
 * `acme/ml-pipelines/.github/workflows/release-reusable.yml@v1` is checked against release-reusable.yml here.
 */
export function githubContext(overrides: Record<string, string> = {}): GithubCheckContext {
  const parser = loadGithubParser();
  return {
    catalog: loadStepCatalog(),
    accessPaths: parser.accessPaths,
    resolveReusable(uses: string) {
      const file = path.basename(uses.replace(/@[^@]*$/, ''));
      const text =
        overrides[file] ?? (fs.existsSync(path.join(GITHUB_DIR, file)) ? fs.readFileSync(path.join(GITHUB_DIR, file), 'utf8') : undefined);
      return text === undefined ? undefined : { file, doc: parseWorkflowYaml(text) as Workflow };
    },
  };
}

/** `text` with `from` replaced by `to`; throws when `from` is absent, so a mutation test cannot pass vacuously. */
export function mutate(text: string, from: string, to: string): string {
  if (!text.includes(from)) throw new Error(`mutation target not found: ${from}`);
  return text.replace(from, to);
}
