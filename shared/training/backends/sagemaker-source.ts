import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { create as createTar } from 'tar';
import type { Logger } from '../../core/context';
import { StepError } from '../../core/errors';
import type { AwsCaller } from '../../cloud/aws-call';
import { awsErrorName } from '../../cloud/aws-errors';
import { snapshotCodeFolder } from '../../cloud/code-snapshot';

/** Recorded on the tarball, so a re-submit of the same code (a re-run, an attach) uploads nothing. */
const HASH_METADATA = 'mlship-code-sha256';

export interface SourceDirUpload {
  uri: string;
  uploaded: boolean;
  files: number;
  bytes: number;
}

/**
 * What the SageMaker Python SDK does with `source_dir`: a tar.gz of the folder under
 * `<output path>/<job>/source/sourcedir.tar.gz`, which framework containers unpack and run `sagemaker_program`
 * from. The folder is hashed first; when the tarball in S3 already carries that hash it is not uploaded again.
 */
export async function uploadSourceDir(options: {
  dir: string;
  entryPoint?: string;
  outputPath: string;
  jobName: string;
  s3: AwsCaller<S3Client>;
  log: Logger;
}): Promise<SourceDirUpload> {
  const { dir, entryPoint } = options;
  const snapshot = await snapshotCodeFolder(dir, { field: 'sagemaker.sourceDir', maxBytes: 256 * 1024 * 1024 });
  if (entryPoint && !snapshot.files.some((f) => f.rel === entryPoint.replace(/^\.\//, ''))) {
    throw new StepError(`The entry point "${entryPoint}" (sagemaker.entryPoint) is not in the source folder ${dir}.`, {
      hint: 'Give the script path relative to sagemaker.sourceDir, e.g. train.py.',
    });
  }
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(options.outputPath);
  if (!m)
    throw new StepError(`The output path "${options.outputPath}" is not an s3:// URI, so the source folder has nowhere to go.`, {
      hint: 'Set outputPath to s3://bucket/prefix/.',
    });
  const bucket = m[1];
  const key = `${m[2].replace(/\/?$/, '/').replace(/^\/$/, '')}${options.jobName}/source/sourcedir.tar.gz`;
  const uri = `s3://${bucket}/${key}`;
  const existing = await options.s3.call(
    'HeadObject',
    async (c) => (await c.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).Metadata?.[HASH_METADATA],
    (error) =>
      ['NotFound', 'NoSuchKey'].includes(awsErrorName(error)) ||
      (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404
        ? { value: undefined }
        : undefined,
  );
  if (existing === snapshot.hash) {
    options.log.info(`Source folder ${dir} is unchanged (${snapshot.files.length} files); ${uri} already holds it.`);
    return { uri, uploaded: false, files: snapshot.files.length, bytes: snapshot.bytes };
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-sourcedir-'));
  try {
    const tarball = path.join(work, 'sourcedir.tar.gz');
    // portable + a fixed mtime: the archive depends on the files only, like the hash.
    await createTar(
      { gzip: true, portable: true, mtime: new Date(0), cwd: dir, file: tarball, noDirRecurse: true },
      snapshot.files.map((f) => f.rel),
    );
    const body = fs.readFileSync(tarball);
    await options.s3.call('PutObject', (c) =>
      c.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: body,
          ContentType: 'application/gzip',
          Metadata: { [HASH_METADATA]: snapshot.hash },
        }),
      ),
    );
    options.log.info(
      `Uploaded source folder ${dir} (${snapshot.files.length} files, ${(body.length / 1024).toFixed(1)} KiB packed) to ${uri}.`,
    );
    return { uri, uploaded: true, files: snapshot.files.length, bytes: body.length };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
