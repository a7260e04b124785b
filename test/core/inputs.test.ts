import * as path from 'node:path';
import { InputError } from '../../shared/core/errors';
import { parseInputs } from '../../shared/core/inputs';
import { MemoryHost } from '../../shared/hosts/memory-host';
import { echoStep } from '../fixtures/echo-step';

const parse = (inputs: Record<string, string>) => parseInputs(echoStep, new MemoryHost(inputs, { workspace: '/ws' }));

describe('parseInputs', () => {
  it('applies defaults and converts every type', () => {
    expect(parse({ message: 'm', repeat: '3', shout: 'yes', tags: 'a\n\n# comment\n b \r\nc', reportFile: 'out/r.json' })).toEqual({
      message: 'm',
      mode: 'pass',
      repeat: 3,
      shout: true,
      apiToken: undefined,
      tags: ['a', 'b', 'c'],
      reportFile: path.resolve('/ws', 'out/r.json'),
    });
    expect(parse({ message: 'm' })).toMatchObject({ repeat: 1, shout: false, tags: [], reportFile: undefined });
  });

  it.each([
    [{}, 'Input "message" is required but was not given.'],
    [{ message: 'm', repeat: 'two' }, 'Input "repeat" has value "two", which is not a number.'],
    [{ message: 'm', repeat: '1.5' }, 'Input "repeat" has value "1.5", which is not a whole number.'],
    [{ message: 'm', repeat: '0' }, 'Input "repeat" has value "0", which is out of range.'],
    [{ message: 'm', shout: 'maybe' }, 'Input "shout" has value "maybe", which is not a boolean.'],
    [{ message: 'm', mode: 'explode' }, 'Input "mode" has value "explode", which is not one of the allowed values: pass, fail, crash.'],
  ])('rejects %j', (inputs, message) => {
    expect(() => parse(inputs as Record<string, string>)).toThrow(new InputError(message));
  });

  it('treats whitespace-only values as not given', () => {
    expect(() => parse({ message: '   ' })).toThrow('is required');
  });

  it('registers secrets with the host before anything can log them', () => {
    const host = new MemoryHost({ message: 'm', apiToken: 'hunter2-secret' });
    parseInputs(echoStep, host);
    host.info('leak? hunter2-secret');
    expect(host.text).toBe('leak? ***');
  });

  it('keeps leading and trailing spaces of a secret', () => {
    expect(parse({ message: 'm', apiToken: ' pad ' }).apiToken).toBe(' pad ');
  });
});
