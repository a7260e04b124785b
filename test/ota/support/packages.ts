import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildPackage, generateSigningKeyPair } from '../../../shared/package';
import { segmentationModel, writeModel } from '../../package/onnx-fixture';

export const KEYS = generateSigningKeyPair();

/**
 * A real signed device package (build-device-package's builder) around a tiny ONNX model whose weights are
 * `payloadBytes` of deterministic bytes (or the given `payload`), so each version has distinct content and a chosen size.
 */
export async function makePackage(dir: string, version: string, options: { name?: string; payloadBytes?: number; payload?: Buffer; privateKeyPem?: string } = {}): Promise<string> {
  const name = options.name ?? 'cellseg';
  const work = path.join(dir, `src-${name}-${version}`);
  fs.mkdirSync(work, { recursive: true });
  const floats = Math.max(1, Math.floor((options.payload?.length ?? options.payloadBytes ?? 256) / 4));
  const raw = options.payload?.subarray(0, floats * 4) ?? deterministicBytes(`${name}@${version}`, floats * 4);
  const model = path.join(work, 'model.onnx');
  await writeModel(model, segmentationModel({ initializers: [{ name: 'bias', dims: [floats], raw }] }));
  const built = await buildPackage({ name, version, models: [model], signingKey: options.privateKeyPem ?? KEYS.privateKeyPem, outputDir: path.join(dir, 'packages') });
  return built.archivePath;
}

function deterministicBytes(seed: string, length: number): Buffer {
  const out = Buffer.alloc(length);
  let block = createHash('sha256').update(seed).digest();
  for (let offset = 0; offset < length; offset += block.length) {
    block.copy(out, offset);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}
