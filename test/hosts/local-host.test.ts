import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalHost } from '../../shared/hosts/local-host';

describe('LocalHost', () => {
  it('masks secrets, indents groups, names inputs as CLI flags', () => {
    const lines: string[] = [];
    const host = new LocalHost({ inputs: { groundTruth: 'gt.json', empty: '' }, write: (l) => lines.push(l) });
    host.setSecret('s3cr3t-value');
    host.startGroup('load');
    host.info('key=s3cr3t-value');
    host.endGroup();
    host.warning('odd box', { file: 'gt.json', line: 4 });
    expect(lines).toEqual(['▸ load', '  key=***', 'warning gt.json:4: odd box']);
    expect(host.inputLabel('groundTruth')).toBe('--ground-truth');
    expect(host.getInput('groundTruth')).toBe('gt.json');
    expect(host.getInput('empty')).toBeUndefined();
  });

  it('appends the summary to the file given', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lh-')), 's.md');
    const host = new LocalHost({ inputs: {}, summaryFile: file, write: () => undefined });
    host.appendSummary('# one');
    host.appendSummary('# two');
    expect(fs.readFileSync(file, 'utf8')).toBe('# one\n# two\n');
  });
});
