import { checkAzureSnippet, checkGithubSnippet, docSnippets, type Snippet } from './support/doc-snippets';
import { githubContext, mutate } from './support/examples';
import { PIPELINE_STEPS, loadStepCatalog } from './support/step-definitions';

/**
 * Every GitHub and Azure DevOps YAML snippet in docs/ and README.md, checked the way workflows-examples/ are:
 * inputs exist and required ones are given, referenced outputs exist, and versions taken from a tag strip its "v".
 */
const snippets = docSnippets();
const ctx = githubContext();
const catalog = loadStepCatalog();
const check = (s: Snippet) => (s.platform === 'github' ? checkGithubSnippet(s, ctx) : checkAzureSnippet(s, catalog));
const find = (where: string) => {
  const s = snippets.find((x) => x.where.startsWith(where));
  if (!s) throw new Error(`no snippet at ${where}`);
  return s;
};

describe('YAML snippets in docs/ and README.md', () => {
  it('are found: every step guide has a GitHub and an Azure DevOps snippet', () => {
    const platforms = (file: string) => new Set(snippets.filter((s) => s.where.startsWith(file)).map((s) => s.platform));
    for (const step of PIPELINE_STEPS) {
      expect({ step, platforms: [...platforms(`docs/${step}.md`)].sort() }).toEqual({ step, platforms: ['azure', 'github'] });
    }
    expect([...platforms('README.md')].sort()).toEqual(['azure', 'github']);
  });

  it('pass every check', () => {
    for (const s of snippets) expect({ where: s.where, findings: check(s) }).toEqual({ where: s.where, findings: [] });
  });

  // The two examples that were broken before this test existed (issue 19), reintroduced.
  it('catch a tag name used as a version without stripping its "v"', () => {
    const s = snippets.find((x) => x.where.startsWith('docs/build-device-package.md') && x.platform === 'github')!;
    const broken = { ...s, text: mutate(s.text, 'version: ${{ steps.version.outputs.version }}', 'version: ${{ github.ref_name }}') };
    expect(check(broken)).toEqual([
      expect.stringContaining('input "version" is ${{ github.ref_name }}, the tag as is: a v1.4.0 tag is not a version'),
    ]);
    const azure = snippets.find((x) => x.where.startsWith('docs/build-device-package.md') && x.platform === 'azure')!;
    const line = azure.text.split('\n').find((l) => /^\s+version:/.test(l))!;
    expect(
      checkAzureSnippet(
        { ...azure, text: mutate(azure.text, line, line.replace(/version: .*/, 'version: $(Build.SourceBranchName)')) },
        catalog,
      ),
    ).toEqual([expect.stringContaining('the tag as is')]);
  });

  it('catch an output no step has', () => {
    const s = snippets.find((x) => x.where.startsWith('docs/export-onnx.md') && x.platform === 'github')!;
    const line = s.text.split('\n').find((l) => /training-job:/.test(l))!;
    const broken = { ...s, text: mutate(s.text, line, '    training-job: ${{ needs.train.outputs.job-id }}') };
    expect(check(broken)).toEqual([expect.stringContaining('job "train" has no output "job-id"')]);
  });

  it('catch unknown inputs, missing required inputs and wrong output names on Azure DevOps', () => {
    const s = find('README.md');
    const azure = snippets.find((x) => x.where.startsWith('README.md') && x.platform === 'azure')!;
    expect(s.platform).toBe('github');
    expect(checkAzureSnippet({ ...azure, text: mutate(azure.text, 'groundTruth:', 'groundTruths:') }, catalog)).toEqual([
      `${azure.where}: GateMetrics@1 has no input "groundTruths" (did you mean "groundTruth"?).`,
      `${azure.where}: GateMetrics@1 requires input "groundTruth", which is not given.`,
    ]);
    expect(checkAzureSnippet({ ...azure, text: mutate(azure.text, '$(gate.passed)', '$(gate.pass)') }, catalog)).toEqual([
      expect.stringContaining('task "gate" (gate-metrics) has no output "pass"'),
    ]);
    expect(checkGithubSnippet({ ...s, text: mutate(s.text, 'steps.gate.outputs.passed', 'steps.gate.outputs.pass') }, ctx)).toEqual([
      expect.stringContaining('step "gate" has no output "pass"'),
    ]);
  });
});
