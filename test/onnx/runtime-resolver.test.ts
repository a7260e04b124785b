import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { StepError } from '../../shared/core/errors';
import {
  type InstallCommand,
  loadOnnxRuntime,
  ONNXRUNTIME_NODE_VERSION,
  providerLibraryNames,
  resetLoadedOnnxRuntimeForTests,
  resolveOnnxRuntime,
  toolCacheDir,
} from '../../shared/onnx/runtime';
import { loadSharp, resolveSharpDir } from '../../shared/preprocess/sharp-loader';
import { repoPath } from '../support/paths';

const CUDA_LIBS = ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'];
const ALL_GPU_LIBS = [...CUDA_LIBS, 'libonnxruntime_providers_tensorrt.so'];

/** A fake onnxruntime-node package folder: package.json, an index.js that says who it is, and binary files. */
function fakePackage(dir: string, version: string, libs: string[] = [], id = version): string {
  const pkg = path.join(dir, 'node_modules', 'onnxruntime-node');
  const bin = path.join(pkg, 'bin', 'napi-v6', 'linux', 'x64');
  fs.mkdirSync(bin, { recursive: true });
  fs.writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: 'onnxruntime-node', version, main: 'index.js' }));
  fs.writeFileSync(path.join(pkg, 'index.js'), `module.exports = { id: ${JSON.stringify(id)} };`);
  for (const f of ['libonnxruntime.so.1', 'onnxruntime_binding.node', ...libs]) fs.writeFileSync(path.join(bin, f), '');
  return pkg;
}

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-ort-'));
}

const base = { platform: 'linux' as const, arch: 'x64' };

describe('onnxruntime-node resolution', () => {
  afterEach(() => resetLoadedOnnxRuntimeForTests());

  it('pins the same onnxruntime-node version as package.json', () => {
    const pkg = JSON.parse(fs.readFileSync(repoPath('package.json'), 'utf8'));
    expect(pkg.dependencies['onnxruntime-node']).toBe(ONNXRUNTIME_NODE_VERSION);
  });

  it('uses the onnxruntime-path input, given as an npm --prefix folder or as the package folder', async () => {
    const prefix = tmp();
    const pkg = fakePackage(prefix, '1.23.2', ALL_GPU_LIBS);
    const viaPrefix = await resolveOnnxRuntime({ ...base, explicitPath: prefix, need: 'tensorrt', env: {} });
    expect(viaPrefix).toMatchObject({
      packageDir: pkg,
      version: '1.23.2',
      source: 'input',
      providerLibraries: ALL_GPU_LIBS.slice().sort(),
    });
    const viaPackage = await resolveOnnxRuntime({ ...base, explicitPath: pkg, env: {} });
    expect(viaPackage.packageDir).toBe(pkg);
  });

  it('takes MLSHIP_ONNXRUNTIME_PATH when no input is given, and the input over the variable', async () => {
    const fromEnv = tmp();
    const fromInput = tmp();
    fakePackage(fromEnv, '1.22.0');
    fakePackage(fromInput, '1.23.2');
    expect(await resolveOnnxRuntime({ ...base, env: { MLSHIP_ONNXRUNTIME_PATH: fromEnv } })).toMatchObject({
      source: 'env',
      version: '1.22.0',
    });
    expect(await resolveOnnxRuntime({ ...base, explicitPath: fromInput, env: { MLSHIP_ONNXRUNTIME_PATH: fromEnv } })).toMatchObject({
      source: 'input',
      version: '1.23.2',
    });
  });

  it('refuses an explicit folder without the package instead of silently using another', async () => {
    const empty = tmp();
    await expect(resolveOnnxRuntime({ ...base, explicitPath: empty, env: {} })).rejects.toThrow(
      `onnxruntime-path is "${empty}", but neither that folder nor its node_modules/onnxruntime-node holds an onnxruntime-node package.`,
    );
  });

  it('uses the ordinary require resolution when it has what the provider needs', async () => {
    const repo = tmp();
    const pkg = fakePackage(repo, '1.23.2');
    expect(await resolveOnnxRuntime({ ...base, resolveFrom: repo, need: 'cpu', env: {} })).toMatchObject({
      packageDir: pkg,
      source: 'node_modules',
      providerLibraries: [],
    });
  });

  it('passes over a CPU-only install for cuda and takes a complete tool-cache install with the CUDA providers', async () => {
    const repo = tmp();
    fakePackage(repo, '1.23.2');
    const cache = tmp();
    const cached = toolCacheDir(cache, '1.23.2', 'x64');
    const pkg = fakePackage(cached, '1.23.2', CUDA_LIBS);
    fs.writeFileSync(`${cached}.complete`, '');
    const found = await resolveOnnxRuntime({ ...base, resolveFrom: repo, need: 'cuda', env: { RUNNER_TOOL_CACHE: cache } });
    expect(found).toMatchObject({ packageDir: pkg, source: 'tool-cache', providerLibraries: CUDA_LIBS.slice().sort() });
    expect(found.notes[0]).toContain('(1.23.2) lacks libonnxruntime_providers_shared.so, libonnxruntime_providers_cuda.so');
    // Azure DevOps agents name their tool cache AGENT_TOOLSDIRECTORY.
    expect((await resolveOnnxRuntime({ ...base, resolveFrom: repo, need: 'cuda', env: { AGENT_TOOLSDIRECTORY: cache } })).source).toBe(
      'tool-cache',
    );
  });

  it('ignores a tool-cache folder without its .complete marker (an install that was interrupted)', async () => {
    const repo = tmp();
    const local = fakePackage(repo, '1.23.2');
    const cache = tmp();
    fakePackage(toolCacheDir(cache, '1.23.2', 'x64'), '1.23.2', CUDA_LIBS);
    const found = await resolveOnnxRuntime({ ...base, resolveFrom: repo, need: 'cuda', env: { RUNNER_TOOL_CACHE: cache } });
    // Nothing fits and installing is not allowed: the ordinary install comes back, and the provider check explains.
    expect(found.packageDir).toBe(local);
    expect(found.notes).toEqual([
      expect.stringContaining('lacks libonnxruntime_providers_shared.so'),
      `no complete onnxruntime-node 1.23.2 in the tool cache (${path.join(cache, 'onnxruntime-node', '1.23.2', 'x64')})`,
    ]);
  });

  it('installs into the tool cache with the CUDA providers when allowed, atomically, and marks it complete', async () => {
    const repo = tmp();
    fakePackage(repo, '1.23.2');
    const cache = tmp();
    const calls: InstallCommand[] = [];
    const found = await resolveOnnxRuntime({
      ...base,
      resolveFrom: repo,
      need: 'tensorrt',
      install: true,
      env: { RUNNER_TOOL_CACHE: cache, PATH: '/usr/bin' },
      runInstall: async (command) => {
        calls.push(command);
        fakePackage(command.prefix, '1.23.2', ALL_GPU_LIBS);
      },
    });
    const dir = path.join(cache, 'onnxruntime-node', '1.23.2', 'x64');
    expect(calls).toHaveLength(1);
    expect(calls[0].command).toBe('npm');
    expect(calls[0].args).toEqual([
      'install',
      '--prefix',
      `${dir}.partial-${process.pid}`,
      '--no-save',
      '--no-package-lock',
      '--no-audit',
      '--no-fund',
      'onnxruntime-node@1.23.2',
    ]);
    expect(calls[0].env).toMatchObject({ ONNXRUNTIME_NODE_INSTALL: 'cuda12', ONNXRUNTIME_NODE_INSTALL_CUDA: 'v12', PATH: '/usr/bin' });
    expect(found).toMatchObject({
      source: 'installed',
      packageDir: path.join(dir, 'node_modules', 'onnxruntime-node'),
      providerLibraries: ALL_GPU_LIBS.slice().sort(),
    });
    expect(fs.existsSync(`${dir}.complete`)).toBe(true);
    expect(fs.existsSync(`${dir}.partial-${process.pid}`)).toBe(false);
    // The next job on this runner finds it in the cache.
    expect((await resolveOnnxRuntime({ ...base, resolveFrom: repo, need: 'tensorrt', env: { RUNNER_TOOL_CACHE: cache } })).source).toBe(
      'tool-cache',
    );
  });

  it('installs the CPU-only package for cpu, and cleans up after a failed install', async () => {
    const cache = tmp();
    const empty = tmp();
    const seen: string[] = [];
    await expect(
      resolveOnnxRuntime({
        ...base,
        resolveFrom: empty,
        install: true,
        env: { RUNNER_TOOL_CACHE: cache },
        runInstall: async (command) => {
          seen.push(String(command.env.ONNXRUNTIME_NODE_INSTALL));
          fs.writeFileSync(path.join(command.prefix, 'half-written'), '');
          throw new Error('exit code 1');
        },
      }),
    ).rejects.toThrow('npm install onnxruntime-node@1.23.2 failed: exit code 1');
    expect(seen).toEqual(['skip']);
    expect(fs.readdirSync(path.join(cache, 'onnxruntime-node', '1.23.2'))).toEqual([]);
  });

  it('cannot install without a tool cache, and says so', async () => {
    await expect(resolveOnnxRuntime({ ...base, resolveFrom: tmp(), install: true, need: 'cuda', env: {} })).rejects.toThrow(
      'Cannot install onnxruntime-node 1.23.2: neither RUNNER_TOOL_CACHE nor AGENT_TOOLSDIRECTORY is set',
    );
  });

  it('fails with every place it looked when nothing is found', async () => {
    const error = await resolveOnnxRuntime({ ...base, resolveFrom: tmp(), env: {} }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StepError);
    expect((error as StepError).message).toBe(
      "No onnxruntime-node package was found: require('onnxruntime-node') does not resolve from here; no tool cache (neither RUNNER_TOOL_CACHE nor AGENT_TOOLSDIRECTORY is set).",
    );
  });

  it('loads the resolved package, and refuses a second native runtime from another folder', async () => {
    const a = tmp();
    const b = tmp();
    fakePackage(a, '1.23.2', [], 'first');
    fakePackage(b, '1.23.2', [], 'second');
    const first = loadOnnxRuntime(await resolveOnnxRuntime({ ...base, explicitPath: a, env: {} }));
    expect((first.ort as unknown as { id: string }).id).toBe('first');
    expect(loadOnnxRuntime(await resolveOnnxRuntime({ ...base, explicitPath: a, env: {} }))).toBe(first);
    expect(() => loadOnnxRuntime({ ...first, packageDir: path.join(b, 'node_modules', 'onnxruntime-node') })).toThrow(
      /ONNX Runtime is already loaded from .*; this process cannot also load/,
    );
  });

  it('names the provider libraries per platform', () => {
    expect(providerLibraryNames('cpu', 'linux')).toEqual([]);
    expect(providerLibraryNames('cuda', 'win32')).toEqual(['onnxruntime_providers_shared.dll', 'onnxruntime_providers_cuda.dll']);
    expect(providerLibraryNames('tensorrt', 'linux')).toEqual(ALL_GPU_LIBS);
  });
});

describe('sharp resolution', () => {
  it('loads sharp from MLSHIP_SHARP_PATH, else through the ordinary resolution', () => {
    const dir = tmp();
    const pkg = path.join(dir, 'node_modules', 'sharp');
    fs.mkdirSync(pkg, { recursive: true });
    fs.writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: 'sharp', version: '0.0.1-fake', main: 'index.js' }));
    fs.writeFileSync(path.join(pkg, 'index.js'), 'module.exports = function fakeSharp() { return "fake"; };');
    expect(resolveSharpDir({ MLSHIP_SHARP_PATH: dir })).toBe(pkg);
    expect((loadSharp({ MLSHIP_SHARP_PATH: dir }) as unknown as () => string)()).toBe('fake');
    expect(resolveSharpDir({})).toBe(repoPath('node_modules/sharp'));
    expect(() => resolveSharpDir({ MLSHIP_SHARP_PATH: path.join(dir, 'nothing') })).toThrow(
      'but neither that folder nor its node_modules/sharp holds the sharp package.',
    );
  });
});
