import type { KeyObject } from 'node:crypto';
import { StepError } from '../core/errors';
import { CHANNEL_SCHEMA, type ChannelDocument, parseChannel, serializeChannel, signChannel, type UnsignedChannelDocument } from './channel';
import { channelKey, CHANNEL_NAME, isWriteConflict, type OtaStore, releaseKey } from './store';
import { backoffDelay, sleep } from '../core/retry';

/** After a lost conditional write: short, jittered, so two writers that collided do not collide again in lock-step. */
const CONFLICT_BACKOFF = { baseMs: 5, maxMs: 200 };

export interface ChannelPublisher {
  store: OtaStore;
  signingKey: KeyObject;
  /** Verifies what is already on the channel; derived from the signing key. */
  publicKey: KeyObject;
  expiresInHours: number;
  now?: () => Date;
  /** Conditional-write attempts before giving up under contention. */
  maxAttempts?: number;
}

/** What a change decides; the publisher adds channel, sequence, times and signature. */
export type ChannelDraft = Pick<UnsignedChannelDocument, 'current' | 'previous' | 'rollout' | 'approvals' | 'origin'>;

export interface ChannelUpdate {
  doc: ChannelDocument;
  /** False when the decision was "nothing to change" and the existing document stays. */
  changed: boolean;
  /** Conditional writes that lost a race before this one won. */
  conflicts: number;
}

export function checkChannelName(channel: string, label = 'channel'): void {
  if (!CHANNEL_NAME.test(channel)) {
    throw new StepError(`Input "${label}" has value "${channel}", which is not a valid channel name.`, {
      hint: 'Use lower-case letters, digits, ".", "_" and "-", starting with a letter or digit (e.g. staging, canary, production).',
    });
  }
}

export async function readChannel(
  store: OtaStore,
  channel: string,
  publicKey: KeyObject,
): Promise<{ doc: ChannelDocument; etag: string } | undefined> {
  const key = channelKey(channel);
  const stored = await store.readDocument(key);
  if (!stored) return undefined;
  return { doc: parseChannel(stored.body, publicKey, `${store.location}/${key}`), etag: stored.etag };
}

/**
 * Read, decide, conditionally write, and start over when another writer got there first. The write only
 * succeeds against the exact version that was read (If-Match) or, for a new channel, when none exists
 * (If-None-Match: *), so two pipelines racing can neither lose an update nor publish one sequence twice.
 * `decide` returns undefined to leave the channel as it is; it may throw a StepError to refuse.
 */
export async function updateChannel(
  publisher: ChannelPublisher,
  channel: string,
  decide: (current: ChannelDocument | undefined) => ChannelDraft | undefined,
): Promise<ChannelUpdate> {
  checkChannelName(channel);
  const { store } = publisher;
  const maxAttempts = publisher.maxAttempts ?? 50;
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    const existing = await readChannel(store, channel, publisher.publicKey);
    // A run killed between its channel write and its release record left this sequence without one: every
    // later writer reads the channel first, so the gap is repaired here before anything else is published.
    if (existing) await ensureReleaseRecord(store, existing.doc);
    const draft = decide(existing?.doc);
    if (!draft) {
      if (!existing) throw new Error(`decide() left channel ${channel} unchanged, but it does not exist`);
      return { doc: existing.doc, changed: false, conflicts: attempt };
    }
    const now = publisher.now?.() ?? new Date();
    const unsigned: UnsignedChannelDocument = {
      schema: CHANNEL_SCHEMA,
      channel,
      sequence: (existing?.doc.sequence ?? 0) + 1,
      issuedAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + publisher.expiresInHours * 3_600_000).toISOString(),
      ...draft,
    };
    const doc = signChannel(unsigned, publisher.signingKey);
    try {
      await store.writeDocument(channelKey(channel), serializeChannel(doc), existing ? { ifMatch: existing.etag } : { ifNoneMatch: '*' });
    } catch (error) {
      if (!isWriteConflict(error)) throw error;
      await sleep(backoffDelay(attempt + 1, CONFLICT_BACKOFF));
      continue;
    }
    await writeReleaseRecord(store, doc);
    return { doc, changed: true, conflicts: attempt };
  }
  throw new StepError(`Channel "${channel}" in ${store.location} changed under us ${maxAttempts} times in a row; gave up.`, {
    hint: 'Another pipeline is updating the same channel in a loop. Let it finish, then run this step again.',
  });
}

/**
 * Writes the release record of a published sequence when it is missing, marked as repaired. Losing the
 * create-only race to another repairer (or to the late original writer) is fine: either record is the same
 * signed document.
 */
async function ensureReleaseRecord(store: OtaStore, doc: ChannelDocument): Promise<void> {
  const key = releaseKey(doc.channel, doc.sequence);
  if (await store.readDocument(key)) return;
  try {
    await store.writeDocument(key, releaseRecord(doc, true), { ifNoneMatch: '*' });
  } catch (error) {
    if (!isWriteConflict(error)) throw error;
  }
}

function releaseRecord(doc: ChannelDocument, repaired = false): Buffer {
  return Buffer.from(
    JSON.stringify(
      { schema: 'mlship.release/v1', recordedAt: new Date().toISOString(), ...(repaired ? { repaired: true } : {}), document: doc },
      null,
      2,
    ) + '\n',
  );
}

/**
 * One record per sequence number, written create-only after the channel write that owns that number: the
 * audit trail of who released what, when, with which approvals. The sequence is unique to the winning writer,
 * so a collision here means the store was edited by hand, unless the record holds this very document (another
 * writer repaired it in between). A kill between the two writes is repaired by the next update of the channel
 * (ensureReleaseRecord).
 */
async function writeReleaseRecord(store: OtaStore, doc: ChannelDocument): Promise<void> {
  try {
    await store.writeDocument(releaseKey(doc.channel, doc.sequence), releaseRecord(doc), { ifNoneMatch: '*' });
  } catch (error) {
    if (!isWriteConflict(error)) throw error;
    // Another writer may have read the channel between our two writes and repaired the record: same document.
    if (await recordHolds(store, doc)) return;
    throw new StepError(
      `Release record ${releaseKey(doc.channel, doc.sequence)} already exists in ${store.location}, although sequence ${doc.sequence} was just published.`,
      {
        hint: 'Someone wrote release records by hand; compare them with the channel document before the next release.',
      },
    );
  }
}

async function recordHolds(store: OtaStore, doc: ChannelDocument): Promise<boolean> {
  const stored = await store.readDocument(releaseKey(doc.channel, doc.sequence));
  try {
    const record = stored && (JSON.parse(stored.body.toString('utf8')) as { document?: ChannelDocument });
    return record?.document?.signature?.value === doc.signature.value;
  } catch {
    return false;
  }
}
