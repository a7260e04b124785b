import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as OrtModule from 'onnxruntime-node';
import { StepError } from '../core/errors';
import { findPackageDir, readManifest, requirePackageDir, resolveInstalledPackageDir } from './native-module';
import { firstLine } from './session';

/**
 * The one place mlship loads ONNX Runtime. onnxruntime-node is a native add-on that the bundled actions cannot
 * carry, and its default npm install has no CUDA/TensorRT providers on some machines, so it is found at run time:
 *
 *   1. an explicit folder: the `onnxruntime-path` input, else MLSHIP_ONNXRUNTIME_PATH
 *      (e.g. a CUDA-enabled install provisioned on the GPU runner);
 *   2. the ordinary `require('onnxruntime-node')` resolution (the repository, the CLI's own install);
 *   3. the runner's tool cache: <RUNNER_TOOL_CACHE | AGENT_TOOLSDIRECTORY>/onnxruntime-node/<version>/<arch>;
 *   4. when allowed, `npm install onnxruntime-node@<version>` into that tool-cache folder (with the CUDA
 *      providers when a GPU provider is needed), so the next job on the runner finds it in step 3.
 *
 * Steps 2-4 skip a folder that lacks the provider libraries the caller needs. See docs/onnxruntime-on-runners.md.
 */

export type Ort = typeof OrtModule;
export type ProviderNeed = 'cpu' | 'cuda' | 'tensorrt';
export type RuntimeSource = 'input' | 'env' | 'node_modules' | 'tool-cache' | 'installed';

/** The onnxruntime-node version mlship is built and tested with (package.json pins the same). */
export const ONNXRUNTIME_NODE_VERSION = '1.23.2';
export const PACKAGE = 'onnxruntime-node';

export interface RuntimeLocation {
  packageDir: string;
  version: string;
  source: RuntimeSource;
  /** GPU provider libraries present in the package's binary folder. */
  providerLibraries: string[];
  /** Folders looked at and why they were passed over, for the log and for error messages. */
  notes: string[];
}

export interface ResolveOptions {
  /** The step's `onnxruntime-path` input (already resolved against the workspace). */
  explicitPath?: string;
  env?: NodeJS.ProcessEnv;
  need?: ProviderNeed;
  version?: string;
  /** Allow an `npm install` into the tool cache when nothing suitable is found. */
  install?: boolean;
  platform?: NodeJS.Platform;
  arch?: string;
  /** Where `require('onnxruntime-node')` resolves from; the caller's own resolution when undefined. */
  resolveFrom?: string;
  /** Runs the npm install; replaced in tests. */
  runInstall?: (command: InstallCommand) => Promise<void>;
  log?: (message: string) => void;
}

export interface InstallCommand {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /** The `--prefix` folder; node_modules/onnxruntime-node appears under it. */
  prefix: string;
}

/** Finds (and, when allowed, installs) the onnxruntime-node package to load. Does not load it. */
export async function resolveOnnxRuntime(options: ResolveOptions = {}): Promise<RuntimeLocation> {
  const env = options.env ?? process.env;
  const need = options.need ?? 'cpu';
  const platform = options.platform ?? process.platform;
  const arch = options.arch ?? process.arch;
  const version = options.version ?? ONNXRUNTIME_NODE_VERSION;
  const log = options.log ?? (() => undefined);
  const notes: string[] = [];

  const explicit = options.explicitPath
    ? { value: options.explicitPath, source: 'input' as const }
    : env.MLSHIP_ONNXRUNTIME_PATH
      ? { value: env.MLSHIP_ONNXRUNTIME_PATH, source: 'env' as const }
      : undefined;
  if (explicit) {
    const dir = findPackageDir(explicit.value, PACKAGE);
    const label = explicit.source === 'input' ? 'onnxruntime-path' : 'MLSHIP_ONNXRUNTIME_PATH';
    if (!dir) {
      throw new StepError(
        `${label} is "${explicit.value}", but neither that folder nor its node_modules/${PACKAGE} holds an ${PACKAGE} package.`,
        {
          hint: `Point ${label} at the ${PACKAGE} package folder, or at the --prefix folder of "npm install --prefix <folder> ${PACKAGE}@${version}".`,
        },
      );
    }
    return describe(dir, explicit.source, platform, arch, notes);
  }

  const local = resolveInstalledPackageDir(PACKAGE, options.resolveFrom);
  if (local) {
    const found = describe(local, 'node_modules', platform, arch, notes);
    const missing = missingLibraries(found, need, platform);
    if (missing.length === 0) return found;
    notes.push(`${local} (${found.version}) lacks ${missing.join(', ')}`);
  } else {
    notes.push(`require('${PACKAGE}') does not resolve from here`);
  }

  const cacheRoot = env.RUNNER_TOOL_CACHE || env.AGENT_TOOLSDIRECTORY;
  const cacheDir = cacheRoot ? toolCacheDir(cacheRoot, version, arch) : undefined;
  if (cacheDir && fs.existsSync(`${cacheDir}.complete`)) {
    const dir = findPackageDir(cacheDir, PACKAGE);
    if (dir) {
      const found = describe(dir, 'tool-cache', platform, arch, notes);
      const missing = missingLibraries(found, need, platform);
      if (missing.length === 0) return found;
      notes.push(`${dir} (tool cache) lacks ${missing.join(', ')}`);
    }
  } else if (cacheDir) {
    notes.push(`no complete ${PACKAGE} ${version} in the tool cache (${cacheDir})`);
  } else {
    notes.push('no tool cache (neither RUNNER_TOOL_CACHE nor AGENT_TOOLSDIRECTORY is set)');
  }

  if (options.install) {
    if (!cacheDir) {
      throw new StepError(
        `Cannot install ${PACKAGE} ${version}: neither RUNNER_TOOL_CACHE nor AGENT_TOOLSDIRECTORY is set, so there is no tool cache to install into.`,
        {
          hint: `Run on a GitHub or Azure DevOps runner, set RUNNER_TOOL_CACHE, or install it yourself and set onnxruntime-path.`,
        },
      );
    }
    const installed = await installToToolCache(cacheDir, version, need, platform, env, options.runInstall ?? runNpm, log);
    const found = describe(installed, 'installed', platform, arch, notes);
    const missing = missingLibraries(found, need, platform);
    if (missing.length > 0) notes.push(`the fresh install in ${installed} still lacks ${missing.join(', ')}`);
    return found;
  }

  // Nothing has what was asked for: hand back the ordinary install, and let the provider check explain.
  if (local) return describe(local, 'node_modules', platform, arch, notes);
  throw new StepError(`No ${PACKAGE} package was found: ${notes.join('; ')}.`, {
    hint: `Set onnxruntime-path to an ${PACKAGE} install, or set install-onnxruntime: true to install ${PACKAGE}@${version} into the runner's tool cache.`,
  });
}

/** GitHub's and Azure's tool-cache layout: <root>/<tool>/<version>/<arch>, complete when <folder>.complete exists. */
export function toolCacheDir(root: string, version: string, arch: string): string {
  return path.join(root, PACKAGE, version, arch);
}

/** File names of the provider libraries a need requires on a platform. */
export function providerLibraryNames(need: ProviderNeed, platform: NodeJS.Platform): string[] {
  if (need === 'cpu') return [];
  const names = need === 'tensorrt' ? ['providers_shared', 'providers_cuda', 'providers_tensorrt'] : ['providers_shared', 'providers_cuda'];
  return names.map((n) => (platform === 'win32' ? `onnxruntime_${n}.dll` : `libonnxruntime_${n}.so`));
}

export function binaryDir(packageDir: string, platform: NodeJS.Platform, arch: string): string {
  return path.join(packageDir, 'bin', 'napi-v6', platform, arch);
}

function describe(packageDir: string, source: RuntimeSource, platform: NodeJS.Platform, arch: string, notes: string[]): RuntimeLocation {
  const bin = binaryDir(packageDir, platform, arch);
  let files: string[] = [];
  try {
    files = fs.readdirSync(bin);
  } catch {
    // An explicit folder may hold a custom build with another layout; the provider check still tells.
  }
  const gpu = new Set([...providerLibraryNames('tensorrt', platform)]);
  return {
    packageDir,
    version: readManifest(packageDir)?.version ?? 'unknown',
    source,
    providerLibraries: files.filter((f) => gpu.has(f)).sort(),
    notes: [...notes],
  };
}

export function missingLibraries(location: RuntimeLocation, need: ProviderNeed, platform: NodeJS.Platform): string[] {
  return providerLibraryNames(need, platform).filter((f) => !location.providerLibraries.includes(f));
}

async function installToToolCache(
  cacheDir: string,
  version: string,
  need: ProviderNeed,
  platform: NodeJS.Platform,
  env: NodeJS.ProcessEnv,
  runInstall: (command: InstallCommand) => Promise<void>,
  log: (message: string) => void,
): Promise<string> {
  // Install beside the final folder and rename, so a cancelled install never looks complete.
  const staging = `${cacheDir}.partial-${process.pid}`;
  fs.rmSync(staging, { recursive: true, force: true });
  fs.mkdirSync(staging, { recursive: true });
  const gpu = need !== 'cpu';
  const installEnv: NodeJS.ProcessEnv = {
    ...env,
    // 1.23 reads ONNXRUNTIME_NODE_INSTALL; releases before 1.21 only ONNXRUNTIME_NODE_INSTALL_CUDA.
    ONNXRUNTIME_NODE_INSTALL: gpu ? 'cuda12' : 'skip',
    ONNXRUNTIME_NODE_INSTALL_CUDA: gpu ? 'v12' : 'skip',
  };
  const command: InstallCommand = {
    command: platform === 'win32' ? 'npm.cmd' : 'npm',
    args: ['install', '--prefix', staging, '--no-save', '--no-package-lock', '--no-audit', '--no-fund', `${PACKAGE}@${version}`],
    env: installEnv,
    prefix: staging,
  };
  log(`installing ${PACKAGE}@${version}${gpu ? ' with the CUDA 12 providers' : ''} into ${cacheDir}`);
  try {
    await runInstall(command);
  } catch (error) {
    fs.rmSync(staging, { recursive: true, force: true });
    throw new StepError(`npm install ${PACKAGE}@${version} failed: ${firstLine(error)}`, {
      hint: 'The runner needs access to the npm registry (and to api.nuget.org for the CUDA providers); or provision the package and set onnxruntime-path.',
      cause: error,
    });
  }
  if (!findPackageDir(staging, PACKAGE)) {
    fs.rmSync(staging, { recursive: true, force: true });
    throw new StepError(`npm install ${PACKAGE}@${version} finished but ${path.join(staging, 'node_modules', PACKAGE)} is missing.`, {
      hint: 'Check the npm output above.',
    });
  }
  fs.rmSync(cacheDir, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(cacheDir), { recursive: true });
  fs.renameSync(staging, cacheDir);
  fs.writeFileSync(`${cacheDir}.complete`, '');
  return path.join(cacheDir, 'node_modules', PACKAGE);
}

function runNpm(command: InstallCommand): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command.command, command.args, {
      env: command.env,
      stdio: ['ignore', 'inherit', 'inherit'],
      shell: process.platform === 'win32',
    });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`exit code ${code}`))));
  });
}

export interface LoadedRuntime extends RuntimeLocation {
  ort: Ort;
}

let loaded: LoadedRuntime | undefined;

/**
 * Loads the resolved package. A process can hold one native ONNX Runtime only (two builds clash on their shared
 * library), so a second, different folder is refused.
 */
export function loadOnnxRuntime(location: RuntimeLocation): LoadedRuntime {
  if (loaded) {
    if (path.resolve(loaded.packageDir) === path.resolve(location.packageDir)) return loaded;
    throw new StepError(`ONNX Runtime is already loaded from ${loaded.packageDir}; this process cannot also load ${location.packageDir}.`, {
      hint: 'Run the steps that need different ONNX Runtime builds in separate processes (separate workflow steps).',
    });
  }
  let ort: Ort;
  try {
    ort = requirePackageDir<Ort>(location.packageDir);
  } catch (error) {
    throw new StepError(`Could not load ${PACKAGE} from ${location.packageDir}: ${firstLine(error)}`, {
      hint: `The package must match this platform (${process.platform}/${process.arch}) and Node ${process.versions.node}; reinstall it there.`,
      cause: error,
    });
  }
  loaded = { ...location, ort };
  return loaded;
}

/** Resolves and loads in one call: what the steps use. */
export async function getOnnxRuntime(options: ResolveOptions = {}): Promise<LoadedRuntime> {
  if (loaded && !options.explicitPath && !(options.env ?? process.env).MLSHIP_ONNXRUNTIME_PATH && (options.need ?? 'cpu') === 'cpu')
    return loaded;
  return loadOnnxRuntime(await resolveOnnxRuntime(options));
}

/** Forgets the loaded module; tests only (the native library itself stays mapped). */
export function resetLoadedOnnxRuntimeForTests(): void {
  loaded = undefined;
}
