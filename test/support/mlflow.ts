import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { requirePython, VENV_BIN } from './python-env';
import { ServerProcess } from './server-process';

/**
 * A real `mlflow server` (tracking + model registry, from the pinned Python test environment) with a SQLite
 * store and proxied artifacts in a temp folder, on a free loopback port; one per test file (it takes a few
 * seconds to start). `stop()` ends it and removes the folder.
 */
export class MlflowServer {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlship-mlflow-'));
  private readonly process: ServerProcess;

  constructor() {
    requirePython(['mlflow.server']);
    const args = [
      'server',
      '--backend-store-uri',
      `sqlite:///${path.join(this.dir, 'mlflow.db')}`,
      '--artifacts-destination',
      path.join(this.dir, 'artifacts'),
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--workers',
      '1',
    ];
    this.process = new ServerProcess(
      'mlflow server',
      path.join(VENV_BIN, 'mlflow'),
      args,
      /Uvicorn running on (http:\/\/127\.0\.0\.1:\d+)/,
      {
        cwd: this.dir,
        timeoutMs: 180_000,
        // No telemetry (tests never reach outside the machine) and no background job runner (MLflow 3's huey
        // workers: seven processes the registry never uses).
        env: {
          MLFLOW_DISABLE_TELEMETRY: 'true',
          DO_NOT_TRACK: 'true',
          MLFLOW_TRACKING_URI: '',
          MLFLOW_SERVER_ENABLE_JOB_EXECUTION: 'false',
        },
      },
    );
  }

  get url(): string {
    return this.process.url;
  }

  start(): Promise<string> {
    return this.process.start();
  }

  async stop(): Promise<void> {
    await this.process.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
