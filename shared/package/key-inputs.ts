import type { KeyObject } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { StepError } from '../core/errors';
import { loadPrivateKey, loadPublicKey } from './signing';

/**
 * A key input holds the key itself (a CI secret: PEM, PEM with \n escapes, base64 of the PEM, or for a public
 * key base64 of the 32 raw bytes: the forms build-device-package accepts) or, on a laptop, the path of a key
 * file. Messages name the input, never the value.
 */
function keyText(value: string, label: string, workspace: string): string {
  const trimmed = value.trim();
  if (!trimmed.includes('-----BEGIN') && !trimmed.includes('\n') && trimmed.length < 4096) {
    const file = path.resolve(workspace, trimmed);
    if (fs.existsSync(file) && fs.statSync(file).isFile()) return fs.readFileSync(file, 'utf8');
    // A value that reads as a file name is one: say the file is missing rather than that the "key" is malformed.
    if (/\.(pem|key|pub)$/i.test(trimmed) || /^\.{0,2}\//.test(trimmed)) {
      throw new StepError(`The key file "${trimmed}" given in input "${label}" does not exist (looked at ${file}).`, {
        hint: 'Pass the path of an existing key file, or the key itself (PEM text) from a secret.',
      });
    }
  }
  return value;
}

export function privateKeyInput(value: string, label: string, workspace: string): KeyObject {
  return loadPrivateKey(keyText(value, label, workspace), `key in input "${label}"`);
}

export function publicKeyInput(value: string | KeyObject, label: string, workspace: string): KeyObject {
  return loadPublicKey(typeof value === 'string' ? keyText(value, label, workspace) : value, `key in input "${label}"`);
}
