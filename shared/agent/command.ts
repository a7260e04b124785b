import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { describeStepError, isStepError } from '../core/errors';
import type { CliCommand, CliIo } from '../cli/commands';
import { runDeviceAgent } from './agent';

const USAGE = `mlship device-agent --channel-url URL --device-id ID --public-key KEY --root DIR [options]

Polls an OTA channel and keeps this device on the release the channel names for it.

  --channel-url URL            channel document (file://…/channels/production.json, https://…?sas)
  --device-id ID               stable id of this instrument (decides rollout membership)
  --public-key KEY             Ed25519 public key: PEM file, PEM text, or base64 of the raw 32 bytes
  --root DIR                   folder the agent owns (slots, current → slot, state.json)
  --channel NAME               channel the device follows (default: from the URL)
  --device-group NAME          group of this device (repeatable)
  --busy-command CMD           exit status 0 means busy: defer installing
  --busy-file PATH             busy while this file exists
  --maintenance-window HH:MM-HH:MM   install only inside this local-time window
  --health-command CMD         run in the new slot after switching; failure reverts
  --health-timeout-seconds N   default 300
  --interval-seconds N         poll interval (default 300)
  --once                       poll once and exit (0: ok or deferred, 1: refused or error)

Each poll prints the device state as one JSON line on stdout.`;

/** `mlship device-agent`, for the lead's CLI command list. */
export const deviceAgentCommand: CliCommand = {
  name: 'device-agent',
  summary: 'Reference device updater: poll a channel, verify, install A/B, health-check, revert.',
  async run(argv: readonly string[], io: CliIo): Promise<number> {
    let values;
    try {
      ({ values } = parseArgs({
        args: [...argv],
        strict: true,
        options: {
          'channel-url': { type: 'string' },
          'device-id': { type: 'string' },
          'public-key': { type: 'string' },
          root: { type: 'string' },
          channel: { type: 'string' },
          'device-group': { type: 'string', multiple: true },
          'busy-command': { type: 'string' },
          'busy-file': { type: 'string' },
          'maintenance-window': { type: 'string' },
          'health-command': { type: 'string' },
          'health-timeout-seconds': { type: 'string' },
          'interval-seconds': { type: 'string' },
          once: { type: 'boolean' },
          help: { type: 'boolean', short: 'h' },
        },
      }));
    } catch (error) {
      io.stderr(`error: ${(error as Error).message}\n\n${USAGE}\n`);
      return 2;
    }
    if (values.help) {
      io.stdout(USAGE + '\n');
      return 0;
    }
    const missing = ['channel-url', 'device-id', 'public-key', 'root'].filter((k) => !values[k as keyof typeof values]);
    if (missing.length) {
      io.stderr(`error: missing ${missing.map((m) => `--${m}`).join(', ')}\n\n${USAGE}\n`);
      return 2;
    }
    const keyArg = values['public-key']!;
    const publicKey = !keyArg.includes('-----BEGIN') && fs.existsSync(keyArg) ? fs.readFileSync(keyArg, 'utf8') : keyArg;
    const controller = new AbortController();
    const stop = () => controller.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      const report = await runDeviceAgent({
        channelUrl: values['channel-url']!,
        deviceId: values['device-id']!,
        publicKey,
        root: path.resolve(values.root!),
        channel: values.channel,
        deviceGroups: values['device-group'],
        busyCommand: values['busy-command'],
        busyFile: values['busy-file'],
        maintenanceWindow: values['maintenance-window'],
        healthCommand: values['health-command'],
        healthTimeoutSeconds: values['health-timeout-seconds'] ? Number(values['health-timeout-seconds']) : undefined,
        intervalSeconds: values['interval-seconds'] ? Number(values['interval-seconds']) : undefined,
        once: values.once,
        signal: controller.signal,
        log: (line) => io.stderr(line + '\n'),
        onReport: (r) => io.stdout(JSON.stringify(r) + '\n'),
      });
      return report.status === 'refused' || report.status === 'error' ? 1 : 0;
    } catch (error) {
      if (!isStepError(error)) throw error;
      io.stderr(`error: ${describeStepError(error)}\n`);
      return 2;
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
  },
};
