import type { Annotation, ProgressReport } from '../../shared/core/host';
import { HostBase, type LogLevel } from '../../shared/core/host-base';

/** A platform that records its calls, to see what HostBase hands the four real hosts. */
class RecordingHost extends HostBase {
  readonly platform = 'memory' as const;
  readonly workspace = '/work';
  readonly tempDir = '/tmp';
  readonly env = {};
  readonly run = { id: 'r', attempt: 1 };
  readonly calls: string[] = [];
  readonly registered: string[] = [];
  constructor() {
    super(60_000);
  }
  inputLabel(key: string): string {
    return key;
  }
  getInput(): string | undefined {
    return undefined;
  }
  setOutput(): void {}
  protected override registerSecretLine(line: string): void {
    this.registered.push(line);
  }
  protected emit(level: LogLevel, text: string, a?: Annotation): void {
    this.calls.push(`${level}${a?.file ? `@${a.file}` : ''}: ${text}`);
  }
  protected emitGroupStart(title: string): void {
    this.calls.push(`group: ${title}`);
  }
  protected emitGroupEnd(): void {
    this.calls.push('endgroup');
  }
  protected emitSummary(markdown: string): void {
    this.calls.push(`summary: ${markdown}`);
  }
  protected emitFailed(message: string): void {
    this.calls.push(`failed: ${message}`);
  }
  protected override emitProgress(report: ProgressReport, line: string): void {
    this.calls.push(`progress(${report.label}): ${line}`);
  }
}

test('HostBase masks every channel, registers a multi-line secret line by line, throttles progress and keeps state', () => {
  const h = new RecordingHost();
  const pem = '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIKs3cr3t\n-----END PRIVATE KEY-----\n';
  h.setSecret(pem);
  h.setSecret('hunter2-token');
  expect(h.registered).toEqual([
    '-----BEGIN PRIVATE KEY-----',
    'MC4CAQAwBQYDK2VwBCIEIKs3cr3t',
    '-----END PRIVATE KEY-----',
    'hunter2-token',
  ]);
  h.debug('d hunter2-token');
  h.info('key line MC4CAQAwBQYDK2VwBCIEIKs3cr3t');
  h.warning('w hunter2-token', { file: 'a.json' });
  h.error('e hunter2-token');
  h.startGroup('upload hunter2-token');
  h.endGroup();
  h.appendSummary('| hunter2-token |');
  h.progress({ label: 'upload hunter2-token', done: 1, total: 10 });
  h.progress({ label: 'upload hunter2-token', done: 2, total: 10 }); // within the interval: dropped
  h.progress({ label: 'upload hunter2-token', done: 10, total: 10 }); // the last report always shows
  h.setFailed('failed with hunter2-token');
  expect(h.calls.join('\n')).not.toContain('hunter2-token');
  expect(h.calls.join('\n')).not.toContain('MC4CAQAwBQYDK2VwBCIEIKs3cr3t');
  expect(h.calls.filter((c) => c.startsWith('progress'))).toHaveLength(2);
  expect(h.calls[2]).toBe('warning@a.json: w ***');
  h.saveState('job', 'j-1');
  expect(h.getState('job')).toBe('j-1');
  expect(h.getState('other')).toBeUndefined();
});
