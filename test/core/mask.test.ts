import { SecretMasker } from '../../shared/core/mask';

describe('SecretMasker', () => {
  it('masks every occurrence, longest secret first', () => {
    const m = new SecretMasker();
    m.add('abc');
    m.add('abcdef');
    expect(m.mask('x abcdef y abc z')).toBe('x *** y *** z');
  });

  it('masks each line of a multi-line secret', () => {
    const m = new SecretMasker();
    m.add('-----BEGIN KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n-----END KEY-----');
    expect(m.mask('line: MC4CAQAwBQYDK2VwBCIEI')).toBe('line: ***');
  });

  it('ignores values too short to mask without destroying the log', () => {
    const m = new SecretMasker();
    m.add('a');
    expect(m.mask('banana')).toBe('banana');
  });
});
