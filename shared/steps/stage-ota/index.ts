import { createPublicKey } from 'node:crypto';
import * as path from 'node:path';
import { mergeInputs } from '../../core/merge-inputs';
import { defineStep } from '../../core/step';
import { compareVersions } from '../../package/contents';
import { privateKeyInput, publicKeyInput } from '../../package/key-inputs';
import { stagePackage } from '../../ota/release';
import { DEFAULT_EXPIRY_HOURS, storeCloudInputs, storeFromInputs, storeInputs } from '../../ota/step-inputs';

export const stageOtaStep = defineStep({
  name: 'stage-ota',
  title: 'Stage OTA release',
  description:
    'Uploads a signed device package to an OTA store (folder, S3, Azure Blob) under its sha256 and points a signed channel (e.g. staging) at it.',
  azure: { id: 'cfde078a-8841-4120-9d24-6790e2e00892', major: 1, minor: 0, patch: 0, category: 'Deploy' },
  branding: { icon: 'upload-cloud', color: 'blue' },
  inputs: mergeInputs(
    {
      package: {
        type: 'path',
        required: true,
        description: 'The device package archive (<name>-<version>.tar.gz from build-device-package).',
      },
    },
    storeInputs,
    {
      channel: { type: 'string', default: 'staging', description: 'Channel to put the package on.' },
      rolloutPercent: {
        type: 'number',
        min: 0,
        max: 100,
        description: 'Share of devices that take the package; default 100, or 0 when device groups are given.',
      },
      deviceGroups: { type: 'list', description: 'Device groups that take the package whatever the percentage, one per line.' },
      expiresInHours: {
        type: 'number',
        min: 1,
        max: 87600,
        default: DEFAULT_EXPIRY_HOURS,
        description: 'Devices refuse the channel document this many hours after it was signed; republish before then.',
      },
      signingKey: {
        type: 'secret',
        required: true,
        description:
          'Ed25519 private key (PEM) that signs the channel document; the package must be signed with the same key unless package-public-key is given.',
      },
      packagePublicKey: {
        type: 'string',
        description: 'Public key (PEM or file) the package is signed with, when it differs from the channel signing key.',
      },
    },
    storeCloudInputs,
  ),
  outputs: {
    packageUrl: { description: 'Where the package is stored.' },
    sha256: { description: 'sha256 of the package archive.' },
    version: { description: 'Package version, from its manifest.' },
    channel: { description: 'The channel that now carries the package.' },
    sequence: { description: 'Sequence number of the channel document.' },
    bytesUploaded: { description: 'Bytes uploaded: 0 when the store already held the package.' },
  },
  async run(inputs, ctx) {
    const signingKey = privateKeyInput(inputs.signingKey, ctx.inputLabel('signingKey'), ctx.workspace);
    const publicKey = createPublicKey(signingKey);
    const packagePublicKey = inputs.packagePublicKey
      ? publicKeyInput(inputs.packagePublicKey, ctx.inputLabel('packagePublicKey'), ctx.workspace)
      : publicKey;
    const store = storeFromInputs(inputs, ctx);
    const label = `upload ${path.basename(inputs.package)}`;
    const result = await ctx.group(`Stage ${path.basename(inputs.package)} on ${inputs.channel} (${store.location})`, () =>
      stagePackage({
        publisher: { store, signingKey, publicKey, expiresInHours: inputs.expiresInHours },
        archivePath: inputs.package,
        channel: inputs.channel,
        packagePublicKey,
        rolloutPercent: inputs.rolloutPercent,
        deviceGroups: inputs.deviceGroups,
        origin: { actor: ctx.run.actor, runId: ctx.run.id, runUrl: ctx.run.url, repository: ctx.run.repository, commit: ctx.run.commit },
        onProgress: (p) => ctx.progress({ label, done: p.done, total: p.total, unit: 'bytes' }),
        signal: ctx.signal,
      }),
    );
    const { release, bytesUploaded, update } = result;
    const doc = update.doc;
    // Allowed (a deliberate downgrade is how a bad release is replaced without rollback), but never silent.
    const replaced = update.changed ? doc.previous : null;
    if (replaced && replaced.name === release.name && compareVersions(release.version, replaced.version) < 0) {
      ctx.log.warning(
        `Staged ${release.name} ${release.version} over the higher version ${replaced.version} on "${doc.channel}": devices that follow it will downgrade.`,
      );
    }
    ctx.log.info(
      bytesUploaded ? `Uploaded ${bytesUploaded} bytes to ${release.url}.` : `The store already holds ${release.key}; nothing uploaded.`,
    );
    ctx.log.info(
      update.changed
        ? `Channel "${doc.channel}" now carries ${release.name} ${release.version} for ${doc.rollout.percent}% of devices${doc.rollout.groups.length ? ` and groups ${doc.rollout.groups.join(', ')}` : ''} (sequence ${doc.sequence}${update.conflicts ? `, after ${update.conflicts} concurrent update(s)` : ''}).`
        : `Channel "${doc.channel}" already carries ${release.name} ${release.version} with this rollout (sequence ${doc.sequence}); left unchanged.`,
    );
    ctx.summary.heading(`Staged ${release.name} ${release.version} on ${doc.channel}`).table(
      ['field', 'value'],
      [
        ['package', release.url],
        ['sha256', release.sha256],
        ['size', `${release.size} bytes`],
        ['uploaded', `${bytesUploaded} bytes`],
        ['channel sequence', doc.sequence],
        ['rollout', `${doc.rollout.percent}%${doc.rollout.groups.length ? ` + groups ${doc.rollout.groups.join(', ')}` : ''}`],
        ['previous', doc.previous ? `${doc.previous.name} ${doc.previous.version}` : 'none'],
        ['expires', doc.expiresAt],
      ],
    );
    return {
      packageUrl: release.url,
      sha256: release.sha256,
      version: release.version,
      channel: doc.channel,
      sequence: doc.sequence,
      bytesUploaded,
    };
  },
});
