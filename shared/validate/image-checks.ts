import { loadSharp } from '../preprocess/sharp-loader';
import type { CheckId, Findings } from './checks';
import type { ImageRef } from './dataset';
import type { FileProbe } from './file-pool';
import { mapLimit } from './files';
import type { ImageHeader } from './image-header';
import { HeaderError, headSource, readImageHeader } from './image-header';

/** What the probe pass learned about one image file, small enough to keep for every image. */
export interface ImageRecord {
  size?: number;
  sha256?: string;
  header?: ImageHeader;
  problem?: { check: CheckId; message: string };
}

/** Turns a probe into a record; the head bytes are read here and then dropped with the probe. */
export function interpretProbe(probe: FileProbe): ImageRecord {
  if (probe.error) {
    const missing = probe.error.code === 'ENOENT';
    return {
      problem: {
        check: missing ? 'image.missing' : 'image.unreadable',
        message: missing ? 'file not found' : `cannot read the file (${probe.error.code})`,
      },
    };
  }
  const record: ImageRecord = { size: probe.size, sha256: probe.sha256 };
  if (!probe.size) return { ...record, problem: { check: 'image.truncated', message: 'file is empty (0 bytes)' } };
  try {
    record.header = readImageHeader(headSource(probe.path, probe.head ?? Buffer.alloc(0), probe.size), {
      tail: probe.tail ?? Buffer.alloc(0),
      png: probe.png,
    });
  } catch (error) {
    if (error instanceof HeaderError) {
      const check: CheckId =
        error.problem === 'unsupported'
          ? 'image.unsupported-format'
          : error.problem === 'truncated'
            ? 'image.truncated'
            : 'image.unreadable';
      return { ...record, problem: { check, message: error.message } };
    }
    // A header so short or malformed that a field read runs off the buffer.
    if (error instanceof RangeError)
      return { ...record, problem: { check: 'image.unreadable', message: `header is corrupt (${error.message})` } };
    throw error;
  }
  if (record.header.truncated) record.problem = { check: 'image.truncated', message: record.header.truncated };
  return record;
}

/** Per-reference checks: missing, unreadable, truncated, unsupported, size versus the annotation. */
export function checkImages(
  refs: readonly ImageRef[],
  records: ReadonlyMap<string, ImageRecord>,
  findings: Findings,
  display: (file: string) => string,
): void {
  findings.ran(
    'image.missing',
    'image.unreadable',
    'image.truncated',
    'image.unsupported-format',
    'image.size-mismatch',
    'image.unusual-bit-depth',
    'image.unusual-channels',
  );
  for (const ref of refs) {
    const record = records.get(ref.path);
    if (!record) continue;
    const shown = display(ref.path);
    if (record.problem) {
      if (record.problem.check === 'image.missing') {
        findings.add('image.missing', {
          split: ref.split,
          file: ref.file,
          id: ref.id,
          field: ref.field,
          value: shown,
          message: `${shown}: ${record.problem.message}`,
        });
      } else {
        findings.add(record.problem.check, { split: ref.split, file: shown, id: ref.id, message: record.problem.message });
      }
    }
    const header = record.header;
    if (header && ref.declared && (header.width !== ref.declared.width || header.height !== ref.declared.height)) {
      findings.add('image.size-mismatch', {
        split: ref.split,
        file: ref.file,
        id: ref.id,
        field: 'width/height',
        value: { annotation: [ref.declared.width, ref.declared.height], image: [header.width, header.height] },
        message: `annotation says ${ref.declared.width}×${ref.declared.height} but ${shown} is ${header.width}×${header.height}`,
      });
    }
  }
  for (const role of ['image', 'mask'] as const) {
    const unique = uniqueByPath(refs.filter((r) => r.role === role));
    flagUnusual(unique, records, 'bitDepth', 'image.unusual-bit-depth', findings, display);
    flagUnusual(unique, records, 'channels', 'image.unusual-channels', findings, display);
  }
}

function uniqueByPath(refs: readonly ImageRef[]): ImageRef[] {
  const seen = new Set<string>();
  return refs.filter((r) => !seen.has(r.path) && seen.add(r.path));
}

/** Flags files whose depth or channel count differs from the most common value among files of the same role. */
function flagUnusual(
  refs: readonly ImageRef[],
  records: ReadonlyMap<string, ImageRecord>,
  key: 'bitDepth' | 'channels',
  check: CheckId,
  findings: Findings,
  display: (file: string) => string,
): void {
  const tally = new Map<number, number>();
  for (const ref of refs) {
    const value = records.get(ref.path)?.header?.[key];
    if (value !== undefined) tally.set(value, (tally.get(value) ?? 0) + 1);
  }
  if (tally.size < 2) return;
  const [usual, count] = [...tally].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0];
  const total = [...tally.values()].reduce((s, n) => s + n, 0);
  const noun = key === 'bitDepth' ? 'bit' : 'channel(s)';
  for (const ref of refs) {
    const header = records.get(ref.path)?.header;
    if (!header || header[key] === usual) continue;
    findings.add(check, {
      split: ref.split,
      file: display(ref.path),
      id: ref.id,
      field: key,
      value: header[key],
      message: `${ref.role} has ${header[key]} ${noun} while ${count} of ${total} ${ref.role}s have ${usual}`,
    });
  }
}

/**
 * Full decode with sharp, for damage a header cannot show (bad compressed data, CRC errors). Failures are
 * written into the records, so checkImages reports them like any other unreadable image.
 */
export async function decodeImages(
  refs: readonly ImageRef[],
  records: Map<string, ImageRecord>,
  concurrency: number,
  onProgress: (done: number, total: number) => void,
  signal?: AbortSignal,
): Promise<void> {
  const targets = uniqueByPath(refs).filter((r) => {
    const record = records.get(r.path);
    return record?.header && !record.problem && record.header.format !== 'bmp';
  });
  const sharp = loadSharp();
  let done = 0;
  const failures = await mapLimit(targets, concurrency, async (ref) => {
    signal?.throwIfAborted();
    try {
      await sharp(ref.path, { limitInputPixels: false, failOn: 'warning' }).stats();
      return undefined;
    } catch (error) {
      return (error as Error).message;
    } finally {
      onProgress(++done, targets.length);
    }
  });
  targets.forEach((ref, i) => {
    const failure = failures[i];
    if (failure === undefined) return;
    records.set(ref.path, {
      ...records.get(ref.path),
      problem: { check: 'image.unreadable', message: `decode failed: ${failure.split('\n')[0]}` },
    });
  });
}
