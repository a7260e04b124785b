import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildPackage, type BuildPackageOptions } from '../../../shared/package';
import { segmentationModel, writeModel } from '../../package/onnx-fixture';

/**
 * A fixed Ed25519 test key (PKCS#8 DER of a constant seed), so packages, and with them the rollout salt derived
 * from their sha256, are the same on every run: which devices fall in a 10% rollout is then reproducible rather
 * than a fresh binomial draw (sd ≈ 2.1 points for 200 devices) each time the tests run.
 */
function fixedKeyPair(seed: string): { privateKeyPem: string; publicKeyPem: string } {
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), createHash('sha256').update(seed).digest()]);
  const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  return {
    privateKeyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString(),
  };
}

export const KEYS = fixedKeyPair('mlship test release key');

/**
 * A real signed device package (build-device-package's builder) around a tiny ONNX model whose weights are
 * `payloadBytes` of deterministic bytes (or the given `payload`), so each version has distinct content and a chosen size.
 */
export async function makePackage(
  dir: string,
  version: string,
  options: {
    name?: string;
    payloadBytes?: number;
    payload?: Buffer;
    privateKeyPem?: string;
    compatibility?: BuildPackageOptions['compatibility'];
    gitCommit?: string;
    dataFingerprint?: string;
  } = {},
): Promise<string> {
  const name = options.name ?? 'cellseg';
  const work = path.join(dir, `src-${name}-${version}`);
  fs.mkdirSync(work, { recursive: true });
  const floats = Math.max(1, Math.floor((options.payload?.length ?? options.payloadBytes ?? 256) / 4));
  const raw = options.payload?.subarray(0, floats * 4) ?? deterministicBytes(`${name}@${version}`, floats * 4);
  const model = path.join(work, 'model.onnx');
  await writeModel(model, segmentationModel({ initializers: [{ name: 'bias', dims: [floats], raw }] }));
  const built = await buildPackage({
    name,
    version,
    models: [model],
    signingKey: options.privateKeyPem ?? KEYS.privateKeyPem,
    outputDir: path.join(dir, 'packages'),
    compatibility: options.compatibility,
    provenance: { gitCommit: options.gitCommit, dataFingerprint: options.dataFingerprint },
  });
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
