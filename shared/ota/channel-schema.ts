/**
 * JSON Schema (draft-07) of a channel document, for device software in other languages. docs/device-agent.md
 * explains each field and the signature rules.
 */
const sha256 = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;
const timestamp = { type: 'string', minLength: 20 } as const;

const releaseRef = {
  type: 'object',
  required: ['name', 'version', 'sha256', 'size', 'key', 'url'],
  properties: {
    name: { type: 'string', minLength: 1 },
    version: { type: 'string', minLength: 1 },
    sha256,
    size: { type: 'integer', minimum: 0 },
    key: { type: 'string', pattern: '^[A-Za-z0-9._/-]+$', not: { pattern: '(^/|\\.\\.)' } },
    url: { type: 'string' },
    registry: {
      type: 'object',
      required: ['kind', 'name', 'version'],
      properties: { kind: { type: 'string' }, name: { type: 'string' }, version: { type: 'string' } },
    },
  },
} as const;

export const channelDocumentSchema = {
  $id: 'https://mlship.dev/schemas/channel-v1.json',
  title: 'mlship OTA channel document',
  type: 'object',
  required: [
    'schema',
    'channel',
    'sequence',
    'issuedAt',
    'expiresAt',
    'current',
    'previous',
    'rollout',
    'approvals',
    'origin',
    'signature',
  ],
  properties: {
    schema: { const: 'mlship.channel/v1' },
    channel: { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]{0,62}$' },
    sequence: { type: 'integer', minimum: 1 },
    issuedAt: timestamp,
    expiresAt: timestamp,
    current: releaseRef,
    previous: { oneOf: [{ type: 'null' }, releaseRef] },
    rollout: {
      type: 'object',
      required: ['percent', 'groups', 'salt'],
      properties: {
        percent: { type: 'number', minimum: 0, maximum: 100 },
        groups: { type: 'array', items: { type: 'string', minLength: 1 } },
        salt: { type: 'string', minLength: 1 },
        phases: { type: 'array', items: { type: 'number', minimum: 0, maximum: 100 } },
        phase: { type: 'integer', minimum: 1 },
      },
    },
    approvals: {
      oneOf: [
        { type: 'null' },
        {
          type: 'object',
          required: ['approvers', 'source'],
          properties: {
            approvers: {
              type: 'array',
              items: {
                type: 'object',
                required: ['login', 'at'],
                properties: { login: { type: 'string' }, at: { type: 'string' }, comment: { type: 'string' } },
              },
            },
            source: { enum: ['github-environment', 'azure-devops', 'cli', 'none'] },
            runUrl: { type: 'string' },
          },
        },
      ],
    },
    origin: {
      type: 'object',
      required: ['event'],
      properties: { event: { enum: ['stage', 'promote', 'rollback'] } },
    },
    signature: {
      type: 'object',
      required: ['algorithm', 'keyId', 'value'],
      properties: {
        algorithm: { const: 'ed25519' },
        keyId: sha256,
        value: { type: 'string', minLength: 1 },
      },
    },
  },
} as const;
