import { formatProgress, ProgressThrottle } from '../../shared/core/progress';

describe('progress', () => {
  it('formats bytes in MB with a percentage', () => {
    expect(formatProgress({ label: 'upload model.onnx', done: 52428800, total: 104857600, unit: 'bytes' })).toBe(
      'upload model.onnx: 50% 50.0 MB/100.0 MB',
    );
    expect(formatProgress({ label: 'training', done: 3, message: 'InProgress' })).toBe('training: 3 — InProgress');
  });

  it('prints the first report, then at most once per interval, and always the last', () => {
    let now = 0;
    const t = new ProgressThrottle(1000, () => now);
    const r = (done: number) => t.shouldPrint({ label: 'x', done, total: 100 });
    expect(r(1)).toBe(true);
    now = 500;
    expect(r(2)).toBe(false);
    now = 1500;
    expect(r(3)).toBe(true);
    now = 1600;
    expect(r(100)).toBe(true);
    expect(r(100)).toBe(false);
  });
});
