import * as path from 'node:path';
import { buildBundle, type Platform } from '../../scripts/build';
import { ROOT } from './runners';

/** Bundles a test-only step with ncc exactly as shipped steps are bundled, into an ignored folder. */
export async function testBundle(platform: Platform, step: string, module: string, exportName: string): Promise<string> {
  const outDir = `.mlship/test-bundles/${platform}/${step}`;
  await buildBundle({ step, module, exportName, platform, outDir });
  return path.join(ROOT, outDir, 'index.js');
}
