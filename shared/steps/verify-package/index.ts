import * as path from 'node:path';
import { defineStep } from '../../core/step';
import { extractVerifiedPackage, keyIdOf, verifyPackage } from '../../package';
import { publicKeyInput } from '../../package/key-inputs';

export const verifyPackageStep = defineStep({
  name: 'verify-package',
  title: 'Verify device package',
  description:
    'Checks a device package the way a device does: Ed25519 signature over the manifest, the manifest schema, every file hash, and no unsafe entries (absolute paths, "..", links, devices, unlisted files).',
  azure: { id: '88df4722-56a0-40ab-9602-e7d90f337313', major: 1, minor: 0, patch: 0, category: 'Deploy' },
  branding: { icon: 'shield', color: 'green' },
  cliPositional: 'archive',
  inputs: {
    archive: { type: 'path', required: true, description: 'The package archive (<name>-<version>.tar.gz).' },
    publicKey: {
      type: 'string',
      required: true,
      description: 'Ed25519 public key: PEM text, base64 of the 32 raw bytes, or the path of a .pem file.',
    },
    extractTo: { type: 'path', description: 'Extract the verified files into this new (or empty) folder.' },
  },
  outputs: {
    name: { description: 'Package name from the manifest.' },
    version: { description: 'Package version from the manifest.' },
    sha256: { description: 'SHA-256 of the archive.' },
    size: { description: 'Archive size in bytes.' },
    keyId: { description: 'Id of the key the package is signed with.' },
    files: { description: 'Number of files in the package.' },
  },
  async run(inputs, ctx) {
    const publicKey = publicKeyInput(inputs.publicKey, ctx.inputLabel('publicKey'), ctx.workspace);
    const verified = inputs.extractTo
      ? await extractVerifiedPackage(inputs.archive, inputs.extractTo, {
          publicKey,
          onExtracted: ({ bytes }) => ctx.progress({ label: `extract ${path.basename(inputs.archive)}`, done: bytes, unit: 'bytes' }),
        })
      : await verifyPackage(inputs.archive, { publicKey });
    const m = verified.manifest;
    ctx.log.info(`${inputs.archive}: signature, schema and ${m.files.length} file hashes verified (${m.name} ${m.version}).`);
    if (inputs.extractTo) ctx.log.info(`Extracted to ${inputs.extractTo}.`);
    ctx.summary
      .heading(`Verified ${m.name} ${m.version}`)
      .table(
        ['archive', 'sha256', 'files', 'models', 'TensorRT caches'],
        [[path.basename(inputs.archive), verified.sha256, m.files.length, m.models.map((x) => x.path).join(', '), m.tensorrtCaches.length]],
      );
    return {
      name: m.name,
      version: m.version,
      sha256: verified.sha256,
      size: verified.size,
      keyId: keyIdOf(publicKey),
      files: m.files.length,
    };
  },
});
