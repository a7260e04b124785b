import { parseStepArgs } from '../../shared/cli/args';
import { echoStep } from '../fixtures/echo-step';

describe('parseStepArgs', () => {
  it('reads --name value, --name=value, flags and repeated list options', () => {
    expect(parseStepArgs(echoStep, ['--message', 'hi', '--repeat=2', '--shout', '--tags', 'a', '--tags=b', '--json']).inputs).toEqual({
      message: 'hi',
      repeat: '2',
      shout: 'true',
      tags: 'a\nb',
    });
  });

  it('accepts --no-flag and an explicit boolean value', () => {
    expect(parseStepArgs(echoStep, ['--no-shout']).inputs.shout).toBe('false');
    expect(parseStepArgs(echoStep, ['--shout', 'false', '--message', 'x']).inputs).toEqual({ shout: 'false', message: 'x' });
  });

  it('handles the global options', () => {
    expect(parseStepArgs(echoStep, ['--json', '--verbose', '--summary', 's.md', '--help'])).toMatchObject({
      json: true,
      verbose: true,
      summaryFile: 's.md',
      help: true,
    });
  });

  it.each([
    [['--mesage', 'x'], 'Unknown option "--mesage" for "mlship echo-test".'],
    [['--reportFile', 'x'], 'Unknown option "--reportFile" for "mlship echo-test".'],
    [['--message'], 'Option "--message" needs a value.'],
    [['stray'], 'Unexpected argument "stray".'],
  ])('rejects %j', (argv, message) => {
    expect(() => parseStepArgs(echoStep, argv)).toThrow(message);
  });
});
