import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The two REST endpoints promote-release reads approvals from, with the response shapes of the real services:
 *   GitHub       GET /repos/{owner}/{repo}/actions/runs/{run_id}/approvals            (Bearer token)
 *   Azure DevOps GET /{org}/{project}/_apis/pipelines/approvals?$expand=steps&…      (Bearer System.AccessToken)
 * and the Actions runner's OIDC token endpoint that @actions/core getIDToken calls
 * (ACTIONS_ID_TOKEN_REQUEST_URL, `?api-version=2.0&audience=…`, Bearer ACTIONS_ID_TOKEN_REQUEST_TOKEN → `{ value }`).
 * Listens on 127.0.0.1; records every request for header assertions.
 */
export interface GitHubReview {
  login: string;
  state: 'approved' | 'rejected';
  comment: string;
  environment: string;
}

export interface AzureApprovalStep {
  uniqueName: string;
  displayName: string;
  status: 'approved' | 'rejected' | 'pending';
  comment: string;
  lastModifiedOn: string;
}

export class FakeCiApi {
  private server?: http.Server;
  url = '';
  readonly token = 'ghs_fake0123456789';
  readonly requests: { method: string; url: string; headers: http.IncomingHttpHeaders }[] = [];
  /** runId → reviews */
  readonly github = new Map<string, GitHubReview[]>();
  /** buildId → approval steps (one approval per build) */
  readonly azure = new Map<string, AzureApprovalStep[]>();
  /** Status to answer instead of data, for error tests. */
  failWith?: number;
  /** OIDC tokens issued, with their audience, in order. */
  readonly idTokens: { audience: string; token: string }[] = [];

  /** The environment a GitHub runner gives a job with `permissions: id-token: write`. */
  get idTokenEnv(): Record<string, string> {
    return { ACTIONS_ID_TOKEN_REQUEST_URL: `${this.url}/_apis/oidc/idtoken?api-version=2.0`, ACTIONS_ID_TOKEN_REQUEST_TOKEN: this.token };
  }

  async start(): Promise<string> {
    this.server = http.createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    const send = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) }).end(text);
    };
    if (req.headers.authorization !== `Bearer ${this.token}`)
      return send(401, { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest', status: '401' });
    if (this.failWith) return send(this.failWith, { message: 'Server Error' });
    const url = new URL(req.url ?? '/', this.url);
    if (url.pathname === '/_apis/oidc/idtoken') {
      const audience = url.searchParams.get('audience') ?? '';
      // A JWT's shape (header.payload.signature); the fake STS does not verify the signature, the real one would.
      const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const token = `${part({ alg: 'RS256', typ: 'JWT' })}.${part({ iss: 'https://token.actions.githubusercontent.com', aud: audience, sub: 'repo:lab/cells:ref:refs/heads/main', n: this.idTokens.length + 1 })}.c2lnbmF0dXJl`;
      this.idTokens.push({ audience, token });
      return send(200, { count: 1, value: token });
    }
    const gh = /^\/repos\/([^/]+)\/([^/]+)\/actions\/runs\/(\d+)\/approvals$/.exec(url.pathname);
    if (gh) {
      const reviews = this.github.get(gh[3]);
      if (!reviews)
        return send(404, {
          message: 'Not Found',
          documentation_url: 'https://docs.github.com/rest/actions/workflow-runs#get-the-review-history-for-a-workflow-run',
          status: '404',
        });
      return send(
        200,
        reviews.map((r, i) => ({
          environments: [
            {
              id: 161088068 + i,
              node_id: 'MDExOkVudmlyb25tZW50MTYxMDg4MDY4',
              name: r.environment,
              url: `https://api.github.com/repos/${gh[1]}/${gh[2]}/environments/${r.environment}`,
              html_url: `https://github.com/${gh[1]}/${gh[2]}/deployments/activity_log?environments_filter=${r.environment}`,
              created_at: '2025-11-23T22:00:40Z',
              updated_at: '2025-11-23T22:00:41Z',
            },
          ],
          state: r.state,
          user: { login: r.login, id: 1000 + i, node_id: 'MDQ6VXNlcjE=', type: 'User', site_admin: false },
          comment: r.comment,
        })),
      );
    }
    const az = /^\/([^/]+)\/([^/]+)\/_apis\/pipelines\/approvals$/.exec(url.pathname);
    if (az && url.searchParams.get('$expand') === 'steps') {
      const value = [...this.azure.entries()].map(([buildId, steps], i) => ({
        id: `aab27959-a5be-4ee3-97ca-f19b3602cd2${i}`,
        steps: steps.map((s) => ({
          assignedApprover: {
            displayName: s.displayName,
            id: '3b3db741-9d03-4e32-a7c0-6c3dfc2013c1',
            uniqueName: s.uniqueName,
            descriptor: 'aad.ZmI=',
          },
          actualApprover: {
            displayName: s.displayName,
            id: '3b3db741-9d03-4e32-a7c0-6c3dfc2013c1',
            uniqueName: s.uniqueName,
            descriptor: 'aad.ZmI=',
          },
          status: s.status,
          comment: s.comment,
          initiatedOn: '2025-11-19T08:14:49.58Z',
          lastModifiedOn: s.lastModifiedOn,
          history: [],
        })),
        status: steps.every((s) => s.status === 'approved') ? 'approved' : 'pending',
        createdOn: '2025-11-19T08:14:49.58Z',
        lastModifiedOn: '2025-11-19T08:20:00.00Z',
        executionOrder: 'anyOrder',
        minRequiredApprovers: 1,
        blockedApprovers: [],
        pipeline: { owner: { id: Number(buildId), name: `20251119.${i + 1}` }, id: '12', name: 'cells-release' },
      }));
      return send(200, { count: value.length, value });
    }
    send(404, { message: 'Not Found' });
  }
}
