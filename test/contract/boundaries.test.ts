import * as fs from 'node:fs';
import * as path from 'node:path';
import { steps } from '../../shared/steps';
import { azureTaskFolder } from '../../shared/core/names';
import { ROOT } from '../support/runners';

/**
 * azure-pipelines-task-lib deletes INPUT_* from process.env when it loads, after which @actions/core reads empty
 * inputs: no bundle may carry both, and the core library carries neither.
 */
describe('module boundaries', () => {
  const files = (dir: string): string[] =>
    fs
      .readdirSync(dir, { withFileTypes: true })
      .flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));

  it('the core library imports no CI platform', () => {
    const offenders = files(path.join(ROOT, 'shared')).filter((f) =>
      /from '(@actions\/|azure-pipelines-task-lib)|require\('(@actions\/|azure-pipelines-task-lib)/.test(fs.readFileSync(f, 'utf8')),
    );
    expect(offenders).toEqual([]);
  });

  const shipped = steps.map((s) => [s.name, s.azure.major] as const);
  it.each(shipped)('%s bundles hold one platform each', (name, major) => {
    const github = fs.readFileSync(path.join(ROOT, 'actions', name, 'dist/index.js'), 'utf8');
    const azure = fs.readFileSync(path.join(ROOT, 'azure-tasks', azureTaskFolder(name, major), 'dist/index.js'), 'utf8');
    expect(github).toContain('GITHUB_OUTPUT');
    expect(github).not.toContain('task.setvariable');
    expect(azure).toContain('task.setvariable');
    expect(azure).not.toContain('GITHUB_OUTPUT');
  });
});
