import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeStepError, InputError, isStepError } from '../core/errors';
import type { CliCommand, CliIo } from '../cli/commands';
import { runCommand, type CommandSpec } from '../cli/options';
import { runDeviceAgent } from './agent';
import { openReportSink, type ReportSinkConfig } from './reporter';

const AGENT: CommandSpec = {
  command: 'mlship device-agent',
  summary: 'Polls an OTA channel and keeps this device on the release the channel names for it.',
  options: {
    'channel-url': {
      type: 'string',
      value: 'URL',
      required: true,
      description: 'channel document (file://…/channels/production.json, https://…?sas)',
    },
    'device-id': { type: 'string', value: 'ID', required: true, description: 'stable id of this instrument (decides rollout membership)' },
    'public-key': {
      type: 'string',
      value: 'KEY',
      required: true,
      description: 'Ed25519 public key: PEM file, PEM text, or base64 of the raw 32 bytes',
    },
    root: { type: 'string', value: 'DIR', required: true, description: 'folder the agent owns (slots, current → slot, state.json)' },
    channel: { type: 'string', value: 'NAME', description: 'channel the device follows (default: from the URL)' },
    'device-group': { type: 'string', value: 'NAME', multiple: true, description: 'group of this device' },
    'busy-command': { type: 'string', value: 'CMD', description: 'exit status 0 means busy: defer installing' },
    'busy-file': { type: 'string', value: 'PATH', description: 'busy while this file exists' },
    'maintenance-window': { type: 'string', value: 'HH:MM-HH:MM', description: 'install only inside this local-time window' },
    'health-command': { type: 'string', value: 'CMD', description: 'run in the new slot after switching; failure reverts' },
    'health-timeout-seconds': { type: 'string', value: 'N', description: 'default 300' },
    'interval-seconds': { type: 'string', value: 'N', description: 'poll interval (default 300)' },
    'device-model': { type: 'string', value: 'NAME', description: "instrument model, checked against the package's device models" },
    'onnxruntime-version': { type: 'string', value: 'V', description: "ONNX Runtime version of the instrument's application" },
    'hardware-file': {
      type: 'string',
      value: 'FILE',
      description: 'JSON hardware facts where nvidia-smi is missing (gpuModel, driver, cuda, …)',
    },
    'nvidia-smi': { type: 'string', value: 'PATH', description: 'nvidia-smi to ask (default: on PATH)' },
    'report-sink': { type: 'string', value: 'KIND', description: 'where reports go: folder, s3, azure-blob or https' },
    'report-uri': { type: 'string', value: 'URI', description: 'folder, s3://bucket/prefix, container URL with SAS, or https endpoint' },
    'report-endpoint': { type: 'string', value: 'URL', description: 'S3-compatible endpoint for --report-sink s3' },
    'report-token-file': { type: 'string', value: 'FILE', description: 'bearer token of this device for --report-sink https' },
    'device-key': { type: 'string', value: 'FILE', description: 'Ed25519 private key (PEM) of this device; reports are signed with it' },
    'telemetry-file': { type: 'string', value: 'FILE', description: 'mlship.telemetry/v1 file the inference application writes' },
    'heartbeat-seconds': { type: 'string', value: 'N', description: 'a report at least this often (default 3600)' },
    once: { type: 'boolean', description: 'poll once and exit (0: ok or deferred, 1: refused or error)' },
  },
  footer: 'Each poll prints the device state as one JSON line on stdout.',
};

type AgentValues = { [K in 'channel-url' | 'device-id' | 'public-key' | 'root']: string } & {
  [K in keyof typeof AGENT.options]?: string;
} & { 'device-group'?: string[]; once?: boolean };

/** `mlship device-agent`, for the lead's CLI command list. */
export const deviceAgentCommand: CliCommand = {
  name: 'device-agent',
  summary: 'Reference device updater: poll a channel, verify, install A/B, health-check, revert.',
  run: (argv: readonly string[], io: CliIo) => runCommand(AGENT, argv, io, (values) => runAgent(values as AgentValues, io)),
};

async function runAgent(values: AgentValues, io: CliIo): Promise<number> {
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
  const keyArg = values['public-key'];
  const publicKey = !keyArg.includes('-----BEGIN') && fs.existsSync(keyArg) ? fs.readFileSync(keyArg, 'utf8') : keyArg;
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const report = await runDeviceAgent({
      channelUrl: values['channel-url'],
      deviceId: values['device-id'],
      publicKey,
      root: path.resolve(values.root),
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
        ? openReportSink({
            kind: sinkKind as ReportSinkConfig['kind'],
            uri: values['report-uri']!,
            endpoint: values['report-endpoint'],
            token: readFileArg('report-token-file', values['report-token-file']),
            env: process.env,
            azureConnectionString: process.env.AZURE_STORAGE_CONNECTION_STRING,
          })
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
}
