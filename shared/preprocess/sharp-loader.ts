import type SharpModule from 'sharp';
import { StepError } from '../core/errors';
import { findPackageDir, requirePackageDir, resolveInstalledPackageDir } from '../onnx/native-module';

/**
 * sharp (libvips) is native, so the bundled actions load it at run time like ONNX Runtime: from MLSHIP_SHARP_PATH
 * (a package folder or an npm --prefix folder) when set, else through the ordinary resolution.
 */
export type Sharp = typeof SharpModule;

let cached: { sharp: Sharp; dir: string } | undefined;

export function resolveSharpDir(env: NodeJS.ProcessEnv = process.env, resolveFrom?: string): string {
  if (env.MLSHIP_SHARP_PATH) {
    const dir = findPackageDir(env.MLSHIP_SHARP_PATH, 'sharp');
    if (!dir)
      throw new StepError(
        `MLSHIP_SHARP_PATH is "${env.MLSHIP_SHARP_PATH}", but neither that folder nor its node_modules/sharp holds the sharp package.`,
        { hint: 'Point it at an "npm install --prefix <folder> sharp" folder.' },
      );
    return dir;
  }
  const dir = resolveInstalledPackageDir('sharp', resolveFrom);
  if (!dir) {
    throw new StepError('The image library sharp is not installed where mlship runs.', {
      hint: 'Run "npm install --prefix <folder> sharp" on the runner and set MLSHIP_SHARP_PATH to that folder.',
    });
  }
  return dir;
}

/** sharp, loaded on first use; any failure (missing, or a native library that will not load) is a StepError. */
export function loadSharp(env: NodeJS.ProcessEnv = process.env): Sharp {
  const dir = resolveSharpDir(env);
  if (cached?.dir === dir) return cached.sharp;
  let mod: Sharp | { default: Sharp };
  try {
    mod = requirePackageDir<Sharp | { default: Sharp }>(dir);
  } catch (error) {
    throw new StepError(`The image library sharp in ${dir} cannot be loaded: ${(error as Error).message.split('\n')[0]}`, {
      hint: 'Reinstall it for this platform ("npm install --prefix <folder> sharp") and set MLSHIP_SHARP_PATH to that folder.',
      cause: error,
    });
  }
  const sharp = (typeof mod === 'function' ? mod : mod.default) as Sharp;
  cached = { sharp, dir };
  return sharp;
}
