/**
 * @jest-environment ./test/onnx/ort-environment.js
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runDemo } from '../../shared/demo/pipeline';
import { extractVerifiedPackage, type PackageManifest } from '../../shared/package';
import { selfTestCommand } from '../../shared/package/self-test-command';
import { runSelfTest } from '../../shared/package/self-test';

/**
 * The golden vectors of the package the demo builds, run as the device runs them: `mlship self-test` on the
 * signed archive passes; on an extracted copy it fails, naming the output and its largest difference, once the
 * model is swapped for another of the same shapes (the demo's production model) and once the preprocessing
 * spec is altered.
 */
describe('mlship self-test on the demo package', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'self-test-'));
  const archive = path.join(dir, 'demo', 'packages', 'cellseg-1.1.0.tar.gz');
  const publicKey = path.join(dir, 'demo', 'keys', 'release.pub.pem');
  beforeAll(async () => {
    await runDemo({ dir: path.join(dir, 'demo'), devices: 1, print: () => undefined });
  }, 600_000);
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const cli = async (args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await selfTestCommand.run(args, { stdout: (t) => out.push(t), stderr: (t) => err.push(t) });
    return { code, stdout: out.join(''), stderr: err.join('') };
  };

  it('passes on the signed package, which carries four golden cases under its signed manifest', async () => {
    const run = await cli([archive, '--public-key', publicKey]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('cellseg 1.1.0 on cpu: all 4 golden cases match');
    const copy = path.join(dir, 'extracted');
    const { manifest } = await extractVerifiedPackage(archive, copy, { publicKey: fs.readFileSync(publicKey, 'utf8') });
    expect(manifest.golden).toEqual({ index: 'golden/index.json', cases: 4 });
    expect(manifest.allowedMismatches).toBeUndefined();
    const goldenFiles = manifest.files.filter((f) => f.role === 'golden').map((f) => f.path);
    expect(goldenFiles).toEqual(
      expect.arrayContaining([
        'golden/index.json',
        'golden/000/image.png',
        'golden/000/input-0.npy',
        'golden/000/output-0.npy',
        'golden/003/output-0.npy',
      ]),
    );
    const index = JSON.parse(fs.readFileSync(path.join(copy, 'golden', 'index.json'), 'utf8'));
    expect(index.cases[0]).toMatchObject({
      name: '000',
      model: 'models/model.onnx',
      inputs: { image: { dtype: 'float32', shape: [1, 1, 96, 96] } },
      outputs: { cell_probability: { dtype: 'float32', shape: [1, 1, 96, 96], rtol: 0.001 } },
    });
    // Reports inside the package name the model they measured, and it is this one.
    const modelSha = manifest.files.find((f) => f.path === 'models/model.onnx')!.sha256;
    expect((manifest.provenance.gateReport as { model: { sha256: string } }).model.sha256).toBe(modelSha);
    expect((manifest.provenance.benchmarkReport as { model: { sha256: string } }).model.sha256).toBe(modelSha);
    // An installed copy (the agent's slot) passes too, with the manifest signature checked.
    expect((await cli([copy, '--public-key', publicKey])).code).toBe(0);
  });

  it("is the device agent's health check: a fresh instrument installs the release after `mlship self-test .` passes in the new slot", async () => {
    const { runDeviceAgent } = await import('../../shared/agent');
    const cliPath = path.resolve(__dirname, '../../bin/mlship.js');
    const report = await runDeviceAgent({
      channelUrl: `file://${path.join(dir, 'demo', 'ota', 'channels', 'production.json')}`,
      deviceId: 'scope-health',
      deviceModel: 'biodevice-demo',
      publicKey: fs.readFileSync(publicKey, 'utf8'),
      root: path.join(dir, 'agent'),
      healthCommand: `"${process.execPath}" "${cliPath}" self-test .`,
      healthTimeoutSeconds: 300,
      once: true,
    });
    expect(report.status).toBe('installed');
    expect(report.activeSlot && report.slots[report.activeSlot]?.version).toBe('1.1.0');
    // The same wiring with a self-test that cannot pass (a bad usage exits 2): the agent reverts.
    const refused = await runDeviceAgent({
      channelUrl: `file://${path.join(dir, 'demo', 'ota', 'channels', 'production.json')}`,
      deviceId: 'scope-health',
      deviceModel: 'biodevice-demo',
      publicKey: fs.readFileSync(publicKey, 'utf8'),
      root: path.join(dir, 'agent-2'),
      healthCommand: `"${process.execPath}" "${cliPath}" self-test . --provider nope`,
      once: true,
    });
    expect(refused.status).toBe('reverted');
  }, 300_000);

  it('fails when the model inside an extracted copy is swapped for another with the same shapes', async () => {
    const copy = path.join(dir, 'swapped');
    const { manifest } = await extractVerifiedPackage(archive, copy, { publicKey: fs.readFileSync(publicKey, 'utf8') });
    const production = findProductionModel(path.join(dir, 'demo', 'jobs'), manifest);
    fs.copyFileSync(production, path.join(copy, 'models', 'model.onnx'));
    const report = await runSelfTest({ dir: copy });
    expect(report.ok).toBe(false);
    expect(report.failures[0]).toMatch(
      /^models\/model\.onnx has sha256 [0-9a-f]{64}, but the manifest says [0-9a-f]{64}: the file was changed after the package was built$/,
    );
    expect(report.failures[1]).toMatch(
      /^case 000: output cell_probability differs from the golden output: max abs difference \d\.\d\de[-+]\d+ \(worst at \[0, 0, \d+, \d+\]: golden [\d.e-]+, here [\d.e-]+\), \d+ of 9216 values outside atol 0\.0001 \+ rtol 0\.001$/,
    );
    // The inputs still match: it is the model that computes differently.
    expect(report.cases.every((c) => c.tensors.find((t) => t.role === 'input')!.ok)).toBe(true);
    const run = await cli([copy]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('self-test: case 000: output cell_probability differs from the golden output: max abs difference');
  });

  it('fails when the preprocessing spec of an extracted copy is altered', async () => {
    const copy = path.join(dir, 'respec');
    await extractVerifiedPackage(archive, copy, { publicKey: fs.readFileSync(publicKey, 'utf8') });
    const specFile = path.join(copy, 'preprocessing.json');
    fs.writeFileSync(specFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(specFile, 'utf8')), maxValue: 255 }));
    const report = await runSelfTest({ dir: copy });
    expect(report.ok).toBe(false);
    expect(report.failures[0]).toMatch(/^preprocessing\.json has sha256 /);
    expect(report.failures).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^case 000: input image differs from the golden input: max abs difference /),
        expect.stringMatching(/^case 000: output cell_probability differs from the golden output: max abs difference /),
      ]),
    );
    // With the public key, a copy whose manifest was edited to match is refused before anything runs.
    const manifestFile = path.join(copy, 'manifest.json');
    fs.writeFileSync(manifestFile, fs.readFileSync(manifestFile, 'utf8').replace('"releaseNotes": "', '"releaseNotes": "edited '));
    const run = await cli([copy, '--public-key', publicKey]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`error: ${manifestFile} is not signed by the given public key (manifest.sig does not verify).`);
  });
});

/** The other model.onnx the demo trained: the production model 1.0.0, same architecture, other weights. */
function findProductionModel(registry: string, manifest: PackageManifest): string {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name === 'model.onnx') found.push(p);
    }
  };
  walk(registry);
  const sha = manifest.files.find((f) => f.path === 'models/model.onnx')!.sha256;
  const crypto = require('node:crypto') as typeof import('node:crypto');
  const other = found.find((f) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex') !== sha);
  if (!other) throw new Error(`no other model.onnx under ${registry}`);
  return other;
}
