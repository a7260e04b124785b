import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { describeStepError, InputError, isStepError } from '../core/errors';
import type { CliCommand, CliIo } from '../cli/commands';
import { runDeviceAgent } from './agent';
import { openReportSink, type ReportSinkConfig } from './reporter';

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
  --device-model NAME          instrument model, checked against the package's device models
  --onnxruntime-version V      ONNX Runtime version of the instrument's application
  --hardware-file FILE         JSON hardware facts where nvidia-smi is missing (gpuModel, driver, cuda, …)
  --nvidia-smi PATH            nvidia-smi to ask (default: on PATH)
  --report-sink KIND           where reports go: folder, s3, azure-blob or https
  --report-uri URI             folder, s3://bucket/prefix, container URL with SAS, or https endpoint
  --report-endpoint URL        S3-compatible endpoint for --report-sink s3
  --report-token-file FILE     bearer token of this device for --report-sink https
  --device-key FILE            Ed25519 private key (PEM) of this device; reports are signed with it
  --telemetry-file FILE        mlship.telemetry/v1 file the inference application writes
  --heartbeat-seconds N        a report at least this often (default 3600)
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
          'device-model': { type: 'string' },
          'onnxruntime-version': { type: 'string' },
          'hardware-file': { type: 'string' },
          'nvidia-smi': { type: 'string' },
          'report-sink': { type: 'string' },
          'report-uri': { type: 'string' },
          'report-endpoint': { type: 'string' },
          'report-token-file': { type: 'string' },
          'device-key': { type: 'string' },
          'telemetry-file': { type: 'string' },
          'heartbeat-seconds': { type: 'string' },
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
    const sinkKind = values['report-sink'];
    if (sinkKind !== undefined && !['folder', 's3', 'azure-blob', 'https'].includes(sinkKind)) {
      io.stderr(`error: --report-sink is "${sinkKind}"; use folder, s3, azure-blob or https\n`);
      return 2;
    }
    if ((sinkKind === undefined) !== (values['report-uri'] === undefined)) {
      io.stderr('error: --report-sink and --report-uri go together\n');
      return 2;
    }
    const readFileArg = (flag: string, file: string | undefined): string | undefined => {
      if (file === undefined) return undefined;
      try {
        return fs.readFileSync(file, 'utf8').trim();
      } catch (error) {
        throw new InputError(`--${flag} ${file} cannot be read: ${(error as Error).message}`);
      }
    };
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
        deviceModel: values['device-model'],
        onnxruntimeVersion: values['onnxruntime-version'],
        hardwareFile: values['hardware-file'],
        nvidiaSmi: values['nvidia-smi'],
        reportSink: sinkKind
          ? openReportSink({ kind: sinkKind as ReportSinkConfig['kind'], uri: values['report-uri']!, endpoint: values['report-endpoint'], token: readFileArg('report-token-file', values['report-token-file']), env: process.env, azureConnectionString: process.env.AZURE_STORAGE_CONNECTION_STRING })
          : undefined,
        deviceKey: readFileArg('device-key', values['device-key']),
        telemetryFile: values['telemetry-file'],
        heartbeatSeconds: values['heartbeat-seconds'] ? Number(values['heartbeat-seconds']) : undefined,
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
