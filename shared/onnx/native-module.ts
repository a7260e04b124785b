import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';

/**
 * Native add-ons (onnxruntime-node, sharp) cannot be bundled by @vercel/ncc: they are loaded at run time from a
 * folder found on the machine. These helpers keep every such `require` invisible to the bundler's static analysis.
 */

// eval keeps the bundler from seeing (and trying to bundle) what is required through it.
const nodeRequire: NodeRequire = eval('require');

/**
 * The package folder `name` at `location`: either the package folder itself, or a folder whose
 * node_modules/<name> holds it (an `npm install --prefix` folder). Undefined when neither is there.
 */
export function findPackageDir(location: string, name: string): string | undefined {
  for (const dir of [location, path.join(location, 'node_modules', name)]) {
    const manifest = readManifest(dir);
    if (manifest?.name === name) return dir;
  }
  return undefined;
}

export function readManifest(dir: string): { name?: string; version?: string } | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
  } catch {
    return undefined;
  }
}

/** Package folder that plain `require(name)` would load from here (the repository, or the CLI's install). */
export function resolveInstalledPackageDir(name: string, from?: string): string | undefined {
  let entry: string;
  try {
    // The main entry, not package.json: packages with an `exports` map (sharp) do not export their manifest.
    entry = from ? createRequire(path.join(from, 'noop.js')).resolve(name) : nodeRequire.resolve(name);
  } catch {
    return undefined;
  }
  for (let dir = path.dirname(entry); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (readManifest(dir)?.name === name) return dir;
  }
  return undefined;
}

/**
 * Loads the package in `packageDir` through its own package.json `main`, by absolute path through the caller's
 * own `require` (under jest that keeps typed arrays of one realm on both sides of the binding).
 */
export function requirePackageDir<T>(packageDir: string): T {
  return nodeRequire(path.resolve(packageDir)) as T;
}
