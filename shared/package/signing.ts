import * as crypto from 'node:crypto';
import { StepError } from '../core/errors';
import { sha256Hex } from '../core/sha256';
import { stableJson } from './stable-json';
import type { SignatureDocument } from './manifest';

/** Ed25519 keys and the detached manifest signature. Key material never appears in a message. */

export function generateSigningKeyPair(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519', {
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey };
}

const GENERATE_HINT =
  'Generate one with `openssl genpkey -algorithm ed25519 -out signing.pem` and `openssl pkey -in signing.pem -pubout -out signing.pub.pem`.';

/** PEM as pasted into a CI secret: with real newlines, `\n` escapes, or base64 of the whole PEM (single-line secrets). */
function pemText(value: string): string | undefined {
  const text = value.includes('\\n') && !value.includes('\n') ? value.replace(/\\n/g, '\n') : value;
  if (text.includes('-----BEGIN')) return text.trim() + '\n';
  const decoded = Buffer.from(value.trim(), 'base64').toString('utf8');
  return decoded.includes('-----BEGIN') ? decoded.trim() + '\n' : undefined;
}

/** The signing key from a secret (see pemText) or a KeyObject; `label` names the input in messages. */
export function loadPrivateKey(key: string | crypto.KeyObject, label = 'signing key'): crypto.KeyObject {
  let object: crypto.KeyObject | undefined;
  if (typeof key !== 'string') object = key;
  else {
    const pem = pemText(key);
    if (pem) {
      try {
        object = crypto.createPrivateKey(pem);
      } catch {
        object = undefined;
      }
    }
  }
  if (!object || object.type !== 'private' || object.asymmetricKeyType !== 'ed25519') {
    throw new StepError(`The ${label} is not an Ed25519 private key in PEM (PKCS#8) form.`, { hint: GENERATE_HINT });
  }
  return object;
}

/**
 * A public key from PEM (SPKI), base64 of the raw 32 bytes (how devices often store it), a KeyObject,
 * or a private key (its public half).
 */
export function loadPublicKey(key: string | crypto.KeyObject, label = 'public key'): crypto.KeyObject {
  let object: crypto.KeyObject | undefined;
  try {
    if (typeof key !== 'string') object = key.type === 'private' ? crypto.createPublicKey(key) : key;
    else {
      const pem = pemText(key);
      if (pem) object = crypto.createPublicKey(pem);
      else {
        const raw = Buffer.from(key.trim(), 'base64');
        if (raw.length === 32)
          object = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
      }
    }
  } catch {
    object = undefined;
  }
  if (!object || object.asymmetricKeyType !== 'ed25519') {
    throw new StepError(`The ${label} is not an Ed25519 public key (PEM, or base64 of the 32 raw bytes).`, { hint: GENERATE_HINT });
  }
  return object;
}

export function rawPublicKey(key: crypto.KeyObject): Buffer {
  const jwk = (key.type === 'private' ? crypto.createPublicKey(key) : key).export({ format: 'jwk' });
  return Buffer.from(jwk.x as string, 'base64url');
}

/** Lower-case hex SHA-256 of the raw 32-byte public key. */
export function keyIdOf(key: crypto.KeyObject): string {
  return sha256Hex(rawPublicKey(key));
}

/** manifest.sig for the exact manifest bytes. */
export function signManifest(manifestBytes: Buffer, privateKey: crypto.KeyObject): Buffer {
  const doc: SignatureDocument = {
    algorithm: 'ed25519',
    keyId: keyIdOf(privateKey),
    manifestSha256: sha256Hex(manifestBytes),
    signature: crypto.sign(null, manifestBytes, privateKey).toString('base64'),
  };
  return Buffer.from(stableJson(doc));
}

export function verifySignature(manifestBytes: Buffer, signature: string, publicKey: crypto.KeyObject): boolean {
  return crypto.verify(null, manifestBytes, publicKey, Buffer.from(signature, 'base64'));
}
