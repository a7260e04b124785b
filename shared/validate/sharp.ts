import { createRequire } from 'node:module';
import * as path from 'node:path';
import type SharpModule from 'sharp';
import { StepError } from '../core/errors';

export type Sharp = typeof SharpModule;

// Hidden from ncc's static analysis: sharp is native and stays out of the bundles (scripts/build.ts EXTERNALS).
const nodeRequire = eval('require') as NodeRequire;

let cached: Sharp | undefined;

/**
 * sharp, loaded on first use: from MLSHIP_SHARP_PATH (a package folder or an `npm install --prefix` folder) when
 * set, else by ordinary resolution. Resolves the package's main entry, since sharp's `exports` map does not
 * expose package.json.
 */
export function loadSharp(env: NodeJS.ProcessEnv = process.env): Sharp {
  if (cached) return cached;
  const location = env.MLSHIP_SHARP_PATH;
  try {
    const mod = location ? createRequire(path.join(path.resolve(location), 'noop.js'))(findIn(location)) : nodeRequire('sharp');
    cached = (typeof mod === 'function' ? mod : mod.default) as Sharp;
    return cached;
  } catch (error) {
    throw new StepError(`The image library sharp cannot be loaded${location ? ` from MLSHIP_SHARP_PATH=${location}` : ''}: ${(error as Error).message.split('\n')[0]}`, {
      hint: 'Run "npm install --prefix <folder> sharp" on the runner and set MLSHIP_SHARP_PATH to that folder.',
      cause: error,
    });
  }
}

/** The folder itself when it is the sharp package, else its node_modules/sharp. */
function findIn(location: string): string {
  const abs = path.resolve(location);
  return path.basename(abs) === 'sharp' ? abs : path.join(abs, 'node_modules', 'sharp');
}
