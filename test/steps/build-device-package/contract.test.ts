import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initWeights, toOnnx } from '../../../shared/demo/segmenter';
import { generateSigningKeyPair } from '../../../shared/package';
import { runAzureTask, runCli, runGitHubAction, shippedBundle } from '../../support/runners';

const keys = generateSigningKeyPair();
const other = generateSigningKeyPair();
const keyLines = keys.privateKeyPem.split('\n').filter((l) => l && !l.startsWith('-----'));

function workspace(): string {
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'pkg-contract-'));
  fs.writeFileSync(path.join(ws, 'model.onnx'), toOnnx(initWeights(2, 1, 0.2, 0.2)));
  fs.writeFileSync(path.join(ws, 'classes.json'), JSON.stringify({ 0: 'background', 1: 'cell' }));
  fs.writeFileSync(path.join(ws, 'release.pub.pem'), keys.publicKeyPem);
  return ws;
}

const buildInputs = {
  models: 'model.onnx',
  name: 'cellseg',
  version: '2.3.0',
  labels: 'classes.json',
  'signing-key': keys.privateKeyPem,
  'output-dir': 'out',
};

function flipByte(file: string, at: number): void {
  const bytes = fs.readFileSync(file);
  bytes[at] ^= 0xff;
  fs.writeFileSync(file, bytes);
}

describe('build-device-package and verify-package as GitHub Actions', () => {
  it('builds a signed package reproducibly and never logs the key', async () => {
    const ws = workspace();
    const first = await runGitHubAction(shippedBundle('github', 'build-device-package'), buildInputs, { workspace: ws });
    expect(first.code).toBe(0);
    expect(first.outputs).toMatchObject({ version: '2.3.0', sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(path.basename(first.outputs.archive)).toBe('cellseg-2.3.0.tar.gz');
    expect(first.lines.filter((l) => keyLines.some((k) => l.includes(k)) && !l.startsWith('::add-mask::'))).toEqual([]);
    fs.rmSync(path.join(ws, 'out'), { recursive: true });
    const second = await runGitHubAction(shippedBundle('github', 'build-device-package'), buildInputs, { workspace: ws });
    expect(second.outputs.sha256).toBe(first.outputs.sha256);

    const verified = await runGitHubAction(
      shippedBundle('github', 'verify-package'),
      { archive: first.outputs.archive, 'public-key': keys.publicKeyPem },
      { workspace: ws },
    );
    expect(verified.code).toBe(0);
    expect(verified.outputs).toMatchObject({ name: 'cellseg', version: '2.3.0', sha256: first.outputs.sha256 });
  });

  it('refuses a package whose bytes were changed', async () => {
    const ws = workspace();
    const built = await runGitHubAction(shippedBundle('github', 'build-device-package'), buildInputs, { workspace: ws });
    flipByte(built.outputs.archive, 2000);
    const verified = await runGitHubAction(
      shippedBundle('github', 'verify-package'),
      { archive: built.outputs.archive, 'public-key': 'release.pub.pem' },
      { workspace: ws },
    );
    expect(verified.code).toBe(1);
    expect(verified.stdout).toContain('::error::');
    expect(verified.stdout).toMatch(/cellseg-2\.3\.0\.tar\.gz/);
  });
});

describe('build-device-package and verify-package as Azure DevOps tasks', () => {
  it('builds, then refuses verification with the wrong public key', async () => {
    const ws = workspace();
    const built = await runAzureTask(
      shippedBundle('azure', 'build-device-package'),
      { models: 'model.onnx', name: 'cellseg', version: '2.3.0', signingKey: keys.privateKeyPem, outputDir: 'out' },
      { workspace: ws },
    );
    expect(built.result).not.toBe('Failed');
    expect(built.outputs.archive).toMatch(/cellseg-2\.3\.0\.tar\.gz$/);
    const wrong = await runAzureTask(
      shippedBundle('azure', 'verify-package'),
      { archive: built.outputs.archive, publicKey: other.publicKeyPem },
      { workspace: ws },
    );
    expect(wrong.result).toBe('Failed');
    const right = await runAzureTask(
      shippedBundle('azure', 'verify-package'),
      { archive: built.outputs.archive, publicKey: keys.publicKeyPem },
      { workspace: ws },
    );
    expect(right.result).not.toBe('Failed');
    expect(right.outputs.version).toBe('2.3.0');
  });

  it('fails on a version that is not semver, naming the input', async () => {
    const run = await runAzureTask(
      shippedBundle('azure', 'build-device-package'),
      { models: 'model.onnx', name: 'cellseg', version: 'v2.3', signingKey: keys.privateKeyPem },
      { workspace: workspace() },
    );
    expect(run.result).toBe('Failed');
    expect(run.stdout).toContain('version');
  });
});

describe('verify-package from the CLI', () => {
  it('takes the archive as a bare argument; exits 0, then 1 once tampered', async () => {
    const ws = workspace();
    fs.writeFileSync(path.join(ws, 'release.pem'), keys.privateKeyPem);
    const built = await runCli(
      [
        'build-device-package',
        '--models',
        'model.onnx',
        '--name',
        'cellseg',
        '--version',
        '2.3.0',
        '--signing-key',
        'release.pem',
        '--json',
      ],
      { cwd: ws },
    );
    expect(built.code).toBe(0);
    const archive = JSON.parse(built.stdout).archive as string;
    const ok = await runCli(['verify-package', archive, '--public-key', 'release.pub.pem', '--json'], { cwd: ws });
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ name: 'cellseg', version: '2.3.0' });
    flipByte(archive, 1500);
    const bad = await runCli(['verify-package', archive, '--public-key', 'release.pub.pem'], { cwd: ws });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('error:');
  });
});
