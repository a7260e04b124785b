import * as path from 'node:path';
import { requirePython, VENV_BIN } from './python-env';
import { ServerProcess } from './server-process';

export interface Moto {
  url: string;
  stop(): Promise<void>;
}

/** Any key works with moto; these are what the SDK clients sign with. */
export const MOTO_KEY = { accessKeyId: 'AKIAMOTOTESTKEY00001', secretAccessKey: 'moto-test-secret' };
export const MOTO_ACCOUNT = '123456789012';

/**
 * moto_server (the AWS wire-protocol emulator, from the pinned Python test environment) on a free loopback
 * port, one per test file: SageMaker, S3, STS and CloudWatch Logs share it, as one AWS account does.
 */
export class MotoServer {
  private readonly process: ServerProcess;

  constructor() {
    requirePython(['moto.server']);
    this.process = new ServerProcess(
      'moto_server',
      path.join(VENV_BIN, 'moto_server'),
      ['-H', '127.0.0.1', '-p', '0'],
      /Running on (http:\/\/127\.0\.0\.1:\d+)/,
    );
  }

  get url(): string {
    return this.process.url;
  }

  start(): Promise<string> {
    return this.process.start();
  }

  stop(): Promise<void> {
    return this.process.stop();
  }

  /** Forgets every resource (moto's own reset endpoint), so tests in a file do not see each other's. */
  async reset(): Promise<void> {
    const res = await fetch(`${this.url}/moto-api/reset`, { method: 'POST' });
    if (!res.ok) throw new Error(`moto reset answered ${res.status}`);
  }

  /** The environment a step needs to reach this server with static keys: every AWS endpoint points here. */
  env(region = 'eu-west-1'): NodeJS.ProcessEnv {
    return {
      AWS_REGION: region,
      AWS_ACCESS_KEY_ID: MOTO_KEY.accessKeyId,
      AWS_SECRET_ACCESS_KEY: MOTO_KEY.secretAccessKey,
      AWS_ENDPOINT_URL_SAGEMAKER: this.url,
      AWS_ENDPOINT_URL_S3: this.url,
      AWS_ENDPOINT_URL_STS: this.url,
      AWS_ENDPOINT_URL_CLOUDWATCH_LOGS: this.url,
    };
  }
}

/** The function form: a started server and how to stop it (jest's afterAll must call `stop`). */
export async function startMoto(): Promise<Moto> {
  const moto = new MotoServer();
  await moto.start();
  return { url: moto.url, stop: () => moto.stop() };
}
