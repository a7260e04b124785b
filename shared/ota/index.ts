/**
 * OTA release channels: stores (folder, S3, Azure Blob), signed channel documents, staging, promotion and
 * rollback. The steps stage-ota and promote-release and the device agent are built on these.
 */
export { canonicalJson } from '../core/canonical-json';
export {
  CHANNEL_SCHEMA,
  type ChannelDocument,
  type ChannelOrigin,
  inRollout,
  keyIdOf,
  parseChannel,
  type ReleaseRef,
  type RolloutPlan,
  rolloutBucket,
  signChannel,
  targetRelease,
} from './channel';
export { channelDocumentSchema } from './channel-schema';
export { DEFAULT_LOCAL_STORE, openStore, type StoreConfig } from './open-store';
export { type ChannelPublisher, type ChannelUpdate, readChannel, updateChannel } from './publish';
export { promoteChannel, type PromoteOptions, rollbackChannel, type RollbackOptions, stagePackage, type StageOptions } from './release';
export { blobKey, channelKey, type OtaStore, releaseKey, type StoreKind, WriteConflict } from './store';
