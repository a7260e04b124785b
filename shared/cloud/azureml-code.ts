import * as path from 'node:path';
import { ContainerClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import type { Logger } from '../core/context';
import { StepError } from '../core/errors';
import type { ArmClient } from './azure-arm';
import { snapshotCodeFolder } from './code-snapshot';

interface ArmDatastore {
  name: string;
  properties: { datastoreType?: string; accountName?: string; containerName?: string; endpoint?: string; protocol?: string };
}

export interface CodeUpload {
  /** ARM id of the code asset version, for the job's codeId. */
  codeId: string;
  uploaded: boolean;
  files: number;
  bytes: number;
  hash: string;
}

/**
 * What `az ml job create` does with a local `code:` folder: the folder (minus what .amlignore, else .gitignore,
 * excludes) goes to the workspace's default blob datastore under LocalUpload/<hash>/, and an anonymous code asset
 * named after the content hash points at it. A code asset of that name means the same code is already there, so a
 * second submit of unchanged code uploads nothing.
 */
export async function uploadCodeFolder(options: { arm: ArmClient; ws: string; dir: string; log: Logger }): Promise<CodeUpload> {
  const { arm, ws, dir, log } = options;
  const snapshot = await snapshotCodeFolder(dir, { field: 'code', ignoreFiles: ['.amlignore', '.gitignore'] });
  const name = `mlship-${snapshot.hash.slice(0, 32)}`;
  const codeId = `${ws}/codes/${name}/versions/1`;
  if (await arm.get(codeId)) {
    log.info(`Code folder ${dir} is unchanged (${snapshot.files.length} files); using code asset ${name}.`);
    return { codeId, uploaded: false, files: snapshot.files.length, bytes: snapshot.bytes, hash: snapshot.hash };
  }
  const store = (await arm.get<{ value?: ArmDatastore[] }>(`${ws}/datastores`, { isDefault: 'true' }))?.value?.[0];
  const p = store?.properties;
  if (!store || p?.datastoreType !== 'AzureBlob' || !p.accountName || !p.containerName) {
    throw new StepError(`The Azure ML workspace has no default Azure Blob datastore to upload the code folder ${dir} to.`, {
      hint: 'Set a blob datastore as the workspace default (az ml datastore update --set is_default=true), or register the code first (az ml code create) and reference it as azureml:<name>:<version>.',
    });
  }
  const secrets = (
    await arm.send<{ secretsType?: string; key?: string }>('POST', arm.url(`${ws}/datastores/${store.name}/listSecrets`), {})
  ).body;
  if (secrets?.secretsType !== 'AccountKey' || !secrets.key) {
    throw new StepError(
      `The default datastore ${store.name} has no account key mlship can use to upload the code folder (it uses ${secrets?.secretsType ?? 'no stored credential'}).`,
      {
        hint: 'Use a datastore with account-key credentials, or register the code first (az ml code create) and reference it as azureml:<name>:<version>.',
      },
    );
  }
  const account = blobAccountUrl(p.accountName, p.endpoint ?? 'core.windows.net', p.protocol ?? 'https');
  const container = new ContainerClient(`${account}/${p.containerName}`, new StorageSharedKeyCredential(p.accountName, secrets.key));
  const prefix = `LocalUpload/${snapshot.hash.slice(0, 32)}/${path.basename(path.resolve(dir))}`;
  for (const f of snapshot.files) await container.getBlockBlobClient(`${prefix}/${f.rel}`).uploadFile(f.abs);
  await arm.put(codeId, {
    properties: {
      codeUri: `${account}/${p.containerName}/${prefix}`,
      isAnonymous: true,
      description: `Code folder ${path.basename(path.resolve(dir))}, uploaded by mlship`,
      properties: { 'mlship.codeSha256': snapshot.hash },
    },
  });
  log.info(
    `Uploaded code folder ${dir} (${snapshot.files.length} files, ${(snapshot.bytes / 1024).toFixed(1)} KiB) to datastore ${store.name} as code asset ${name}.`,
  );
  return { codeId, uploaded: true, files: snapshot.files.length, bytes: snapshot.bytes, hash: snapshot.hash };
}

/**
 * `https://<account>.blob.<endpoint>`, except for an endpoint that is an IP address and port (the storage
 * emulator, Azurite), which serves accounts path-style: `http://127.0.0.1:10000/<account>`.
 */
function blobAccountUrl(account: string, endpoint: string, protocol: string): string {
  if (/^\d{1,3}(\.\d{1,3}){3}(:\d+)?$/.test(endpoint)) return `${protocol}://${endpoint}/${account}`;
  return `${protocol}://${account}.blob.${endpoint}`;
}
