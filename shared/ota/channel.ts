import { createHash, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { lazySchema } from '../core/lazy-schema';
import { StepError } from '../core/errors';
import type { ApprovalEvidence } from '../registry/types';
import { canonicalJson } from '../core/canonical-json';
import { channelDocumentSchema } from './channel-schema';
import { parseJsonBounded } from '../core/json-depth';

export const CHANNEL_SCHEMA = 'mlship.channel/v1';

/** One package as a channel refers to it. `key` is relative to the store root; devices resolve it against the channel URL. */
export interface ReleaseRef {
  name: string;
  version: string;
  sha256: string;
  size: number;
  key: string;
  /** Where the publisher's store serves it; informational, devices use `key`. */
  url: string;
  /** The model registry entry this package came from, so a rollback can move the registry back too. */
  registry?: { kind: string; name: string; version: string };
}

export interface RolloutPlan {
  /** Share of devices (by stable hash of the device id) that take `current`; the rest keep `previous`. */
  percent: number;
  /** Device groups that take `current` whatever the percentage. */
  groups: string[];
  /** Mixed into the device hash; fixed per release, so 10% → 50% only adds devices. */
  salt: string;
  /** The phase plan, when the release goes out in phases, and which phase (1-based) this is. */
  phases?: number[];
  phase?: number;
  /** When this percentage (phase) was first published: the start of its bake time. */
  startedAt?: string;
}

export interface ChannelOrigin {
  event: 'stage' | 'promote' | 'rollback';
  fromChannel?: string;
  fromSequence?: number;
  actor?: string;
  runId?: string;
  runUrl?: string;
  repository?: string;
  commit?: string;
  reason?: string;
  /** On a rollback, the release that was withdrawn. */
  rolledBack?: ReleaseRef;
  /** On an automatic rollback, the health checks that failed (rule, limit, observed). */
  evidence?: { rule: string; limit: string; observed: string }[];
}

export interface ChannelSignature {
  algorithm: 'ed25519';
  /** sha256 (hex) of the raw 32-byte public key. */
  keyId: string;
  /** Base64 Ed25519 signature over the canonical JSON of the document without `signature`. */
  value: string;
}

export interface ChannelDocument {
  schema: typeof CHANNEL_SCHEMA;
  channel: string;
  /** Strictly increasing per channel; devices refuse a document older than one they have seen. */
  sequence: number;
  issuedAt: string;
  /** Devices refuse the document after this instant, so a frozen mirror cannot hold a fleet back forever. */
  expiresAt: string;
  current: ReleaseRef;
  /** The rollback target; null after a rollback or for the first release. */
  previous: ReleaseRef | null;
  rollout: RolloutPlan;
  approvals: ApprovalEvidence | null;
  origin: ChannelOrigin;
  signature: ChannelSignature;
}

export type UnsignedChannelDocument = Omit<ChannelDocument, 'signature'>;

/** Lower-case hex sha256 of the raw 32-byte Ed25519 public key: the same key id device packages carry. */
export function keyIdOf(key: KeyObject): string {
  const jwk = (key.type === 'private' ? createPublicKey(key) : key).export({ format: 'jwk' });
  return createHash('sha256')
    .update(Buffer.from(jwk.x as string, 'base64url'))
    .digest('hex');
}

export function signChannel(doc: UnsignedChannelDocument, privateKey: KeyObject): ChannelDocument {
  const value = sign(null, Buffer.from(canonicalJson(doc)), privateKey).toString('base64');
  return { ...doc, signature: { algorithm: 'ed25519', keyId: keyIdOf(privateKey), value } };
}

/** The bytes stored: indented for people who open the file; the signature covers the canonical form. */
export function serializeChannel(doc: ChannelDocument): Buffer {
  return Buffer.from(JSON.stringify(doc, null, 2) + '\n');
}

const channelValidator = lazySchema(channelDocumentSchema, { allErrors: true, strict: false });

/**
 * Parses and checks a channel document: schema, then the Ed25519 signature with `publicKey`. It does not judge
 * freshness (expiry, sequence): publishers may replace an expired document, devices check both themselves.
 * `source` names the document in messages (a URL or a store key).
 */
export function parseChannel(bytes: Buffer | string, publicKey: KeyObject, source: string): ChannelDocument {
  let value: unknown;
  try {
    value = parseJsonBounded(bytes.toString());
  } catch (error) {
    throw new StepError(`Channel document ${source} is not valid JSON (${(error as Error).message}).`, {
      hint: `It was damaged or is not a channel document. stage-ota and promote-release refuse to replace a channel they cannot verify: restore the signed document from the newest release record (the "document" field of releases/<channel>/<sequence>.json in the store) and run the step again.`,
    });
  }
  const validate = channelValidator();
  if (!validate(value)) {
    const first = validate.errors?.[0];
    const where = first?.instancePath || '/';
    throw new StepError(`Channel document ${source} does not match the ${CHANNEL_SCHEMA} schema: ${where} ${first?.message ?? ''}.`, {
      hint: 'It was written by something other than mlship stage-ota/promote-release, or by an incompatible version.',
    });
  }
  const doc = value as unknown as ChannelDocument;
  const { signature, ...unsigned } = doc;
  const expectedKeyId = keyIdOf(publicKey);
  if (signature.keyId !== expectedKeyId) {
    throw new StepError(`Channel document ${source} is signed by key ${signature.keyId}, not by the trusted key ${expectedKeyId}.`, {
      hint: 'Give the public key that matches the signing key of the channel, or republish the channel with the trusted key.',
    });
  }
  if (!verify(null, Buffer.from(canonicalJson(unsigned)), publicKey, Buffer.from(signature.value, 'base64'))) {
    throw new StepError(`Channel document ${source} has an invalid signature: its content was changed after it was signed.`, {
      hint: `Do not use this channel. stage-ota and promote-release refuse to replace a channel they cannot verify: restore the signed document from the newest release record (the "document" field of releases/<channel>/<sequence>.json in the store) and run the step again.`,
    });
  }
  return doc;
}

/** Position of a device in [0, 100): sha256 of salt and device id, so a device keeps its place across phases. */
export function rolloutBucket(deviceId: string, salt: string): number {
  const digest = createHash('sha256').update(`${salt}:${deviceId}`).digest();
  return (digest.readUInt32BE(0) / 2 ** 32) * 100;
}

export function inRollout(doc: Pick<ChannelDocument, 'rollout'>, deviceId: string, deviceGroups: readonly string[] = []): boolean {
  if (doc.rollout.groups.some((g) => deviceGroups.includes(g))) return true;
  return rolloutBucket(deviceId, doc.rollout.salt) < doc.rollout.percent;
}

/** What a device should run: `current` inside the rollout, `previous` outside it (null: keep what it has). */
export function targetRelease(doc: ChannelDocument, deviceId: string, deviceGroups: readonly string[] = []): ReleaseRef | null {
  return inRollout(doc, deviceId, deviceGroups) ? doc.current : doc.previous;
}

export function rolloutSalt(channel: string, release: ReleaseRef): string {
  return `${channel}:${release.sha256.slice(0, 16)}`;
}
