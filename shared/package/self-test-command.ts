import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { describeStepError, isStepError } from '../core/errors';
import type { CliCommand } from '../cli/commands';

const USAGE = `mlship self-test PACKAGE [options]

Runs the golden test vectors of a device package: decodes each sample image, preprocesses it by the packaged
spec, runs the packaged model and compares the input and output tensors with the golden ones within their
tolerances. Exit 0 when every case matches, 1 when one does not (each failure names the tensor and the largest
difference), 2 on bad usage or an unreadable package.

PACKAGE is an installed (extracted) package folder, e.g. the device agent's slot, or a .tar.gz (then
--public-key is required: the archive is verified and extracted to a temporary folder first).

  --public-key KEY     Ed25519 public key (PEM file, PEM text or base64 of the raw key); with a folder, checks manifest.sig
  --provider P         cpu (default), cuda, tensorrt or auto
  --device-id N        GPU index (default 0)
  --onnxruntime-path DIR   an onnxruntime-node install to use (a CUDA-enabled one on the device)
  --json               print the full report as JSON

As the device agent's health check (runs in the new slot, whose folder is the working directory):
  mlship device-agent ... --health-command "mlship self-test . --provider cuda"`;

export const selfTestCommand: CliCommand = {
  name: 'self-test',
  summary: "Run a device package's golden test vectors (decode, preprocess, infer, compare); the device agent's health check",
  async run(argv, io) {
    let parsed;
    try {
      parsed = parseArgs({
        args: [...argv],
        strict: true,
        allowPositionals: true,
        options: {
          'public-key': { type: 'string' },
          provider: { type: 'string' },
          'device-id': { type: 'string' },
          'onnxruntime-path': { type: 'string' },
          json: { type: 'boolean' },
          help: { type: 'boolean', short: 'h' },
        },
      });
    } catch (error) {
      io.stderr(`error: ${(error as Error).message}\n\n${USAGE}\n`);
      return 2;
    }
    const { values, positionals } = parsed;
    if (values.help) {
      io.stdout(USAGE + '\n');
      return 0;
    }
    if (positionals.length !== 1) {
      io.stderr(`error: give one package (a folder or a .tar.gz)\n\n${USAGE}\n`);
      return 2;
    }
    const provider = values.provider ?? 'cpu';
    if (!['cpu', 'cuda', 'tensorrt', 'auto'].includes(provider)) {
      io.stderr(`error: --provider is "${provider}"; use cpu, cuda, tensorrt or auto\n`);
      return 2;
    }
    const deviceId = values['device-id'] === undefined ? 0 : Number(values['device-id']);
    if (!Number.isInteger(deviceId) || deviceId < 0) {
      io.stderr(`error: --device-id is "${values['device-id']}"; give a GPU index (0, 1, …)\n`);
      return 2;
    }
    const keyArg = values['public-key'];
    const publicKey = keyArg && !keyArg.includes('-----BEGIN') && fs.existsSync(keyArg) ? fs.readFileSync(keyArg, 'utf8') : keyArg;
    const target = path.resolve(positionals[0]);
    // Loaded here so that `mlship --help` does not load ONNX Runtime and sharp.
    const { runSelfTest } = require('./self-test') as typeof import('./self-test');
    const { extractVerifiedPackage } = require('./verify') as typeof import('./verify');
    let scratch: string | undefined;
    try {
      let dir = target;
      if (fs.existsSync(target) && fs.statSync(target).isFile()) {
        if (!publicKey) {
          io.stderr('error: a .tar.gz is verified before it is tested: give --public-key (or run on the extracted folder)\n');
          return 2;
        }
        scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-self-test-'));
        dir = path.join(scratch, 'package');
        await extractVerifiedPackage(target, dir, { publicKey });
      }
      const report = await runSelfTest({
        dir,
        provider: provider as 'cpu',
        deviceId,
        publicKey,
        onnxruntimePath: values['onnxruntime-path'],
      });
      if (values.json) io.stdout(JSON.stringify(report, null, 2) + '\n');
      else {
        for (const c of report.cases) {
          const worst = c.tensors.filter((t) => t.role === 'output').reduce((m, t) => Math.max(m, t.maxAbs), 0);
          io.stdout(`${c.ok ? 'ok  ' : 'FAIL'} ${c.name} (${c.model}): max output difference ${worst.toExponential(2)}\n`);
        }
        io.stdout(
          `${report.package.name} ${report.package.version} on ${report.provider}: ${report.ok ? `all ${report.cases.length} golden cases match` : `${report.failures.length} failure(s)`}\n`,
        );
      }
      for (const f of report.failures) io.stderr(`self-test: ${f}\n`);
      return report.ok ? 0 : 1;
    } catch (error) {
      if (!isStepError(error)) throw error;
      io.stderr(`error: ${describeStepError(error)}\n`);
      return 2;
    } finally {
      if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
    }
  },
};
