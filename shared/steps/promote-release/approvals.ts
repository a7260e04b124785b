import { StepError } from '../../core/errors';
import type { ApprovalEvidence } from '../../registry/types';
import { parseJsonBounded } from '../../core/json-depth';

/**
 * Who approved this run, read from the CI platform's REST API. Plain fetch rather than Octokit: @octokit/core 7
 * ships as ES modules only, which the CommonJS core cannot require.
 */

export interface GitHubApprovalQuery {
  apiUrl: string;
  token: string;
  /** owner/repo */
  repository: string;
  runId: string;
  /** Only approvals that covered this environment, when given. */
  environment?: string;
  runUrl?: string;
  now?: () => Date;
}

interface GitHubEnvironmentApproval {
  state: 'approved' | 'rejected' | 'pending';
  comment?: string | null;
  user?: { login?: string } | null;
  environments?: { name?: string }[];
}

/**
 * GET /repos/{owner}/{repo}/actions/runs/{run_id}/approvals: the reviews of the run's environment gates. GitHub
 * gives no time per review, so `at` is when the step read it, which is after the gate opened (the job only
 * starts once its environment was approved).
 */
export async function githubApprovals(query: GitHubApprovalQuery): Promise<ApprovalEvidence> {
  const [owner, repo] = query.repository.split('/');
  if (!owner || !repo)
    throw new StepError(`The repository "${query.repository}" is not owner/repo, so the run's approvals cannot be read.`, {
      hint: 'Run on GitHub Actions, where GITHUB_REPOSITORY is set.',
    });
  const url = `${query.apiUrl.replace(/\/+$/, '')}/repos/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}/actions/runs/${encodeURIComponent(query.runId)}/approvals`;
  const body = await getJson(
    url,
    { Authorization: `Bearer ${query.token}`, Accept: 'application/vnd.github+json', 'X-GitHub-Api-Version': '2022-11-28' },
    'GitHub',
    'Give a token that can read Actions (permissions: actions: read), e.g. github.token.',
  );
  if (!Array.isArray(body))
    throw new StepError(`GitHub answered GET ${url} with ${typeof body}, not a list of approvals.`, {
      hint: 'Check github-api-url: it must be the REST API root (https://api.github.com or https://HOST/api/v3).',
    });
  const at = (query.now?.() ?? new Date()).toISOString();
  const approvers = (body as GitHubEnvironmentApproval[])
    .filter((r) => r.state === 'approved' && r.user?.login)
    .filter((r) => !query.environment || (r.environments ?? []).some((e) => e.name === query.environment))
    .map((r) => ({ login: r.user!.login!, at, ...(r.comment ? { comment: r.comment } : {}) }));
  return { approvers, source: 'github-environment', ...(query.runUrl ? { runUrl: query.runUrl } : {}) };
}

export interface AzureDevOpsApprovalQuery {
  /** System.CollectionUri, e.g. https://dev.azure.com/org/ */
  collectionUri: string;
  /** System.TeamProject */
  project: string;
  /** System.AccessToken */
  token: string;
  /** Build.BuildId: the pipeline run. */
  buildId: string;
  runUrl?: string;
}

interface AzureApproval {
  id: string;
  status: string;
  pipeline?: { owner?: { id?: number | string } };
  steps?: {
    status: string;
    comment?: string;
    lastModifiedOn?: string;
    actualApprover?: { uniqueName?: string; displayName?: string };
    assignedApprover?: { uniqueName?: string; displayName?: string };
  }[];
}

/**
 * GET {collection}/{project}/_apis/pipelines/approvals?$expand=steps&state=approved: the approvals of
 * environment checks (and of the ManualValidation task's stage approvals), kept where `pipeline.owner.id` is
 * this run's Build.BuildId. Each approved step gives the approver (uniqueName), the time and the comment.
 */
export async function azureDevOpsApprovals(query: AzureDevOpsApprovalQuery): Promise<ApprovalEvidence> {
  const base = query.collectionUri.replace(/\/+$/, '');
  const url = `${base}/${encodeURIComponent(query.project)}/_apis/pipelines/approvals?$expand=steps&state=approved&top=500&api-version=7.1`;
  const body = (await getJson(
    url,
    { Authorization: `Bearer ${query.token}`, Accept: 'application/json' },
    'Azure DevOps',
    'Map System.AccessToken into the step (env SYSTEM_ACCESSTOKEN) and let the build identity read pipelines.',
  )) as { value?: AzureApproval[] };
  const approvals = (body.value ?? []).filter((a) => String(a.pipeline?.owner?.id ?? '') === query.buildId && a.status === 'approved');
  const approvers = approvals.flatMap((a) =>
    (a.steps ?? [])
      .filter((s) => s.status === 'approved')
      .map((s) => {
        const who = s.actualApprover ?? s.assignedApprover;
        return {
          login: who?.uniqueName ?? who?.displayName ?? 'unknown',
          at: s.lastModifiedOn ?? '',
          ...(s.comment ? { comment: s.comment } : {}),
        };
      }),
  );
  return { approvers, source: 'azure-devops', ...(query.runUrl ? { runUrl: query.runUrl } : {}) };
}

async function getJson(url: string, headers: Record<string, string>, service: string, authHint: string): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(url, { headers: { 'User-Agent': 'mlship', ...headers }, signal: AbortSignal.timeout(30_000) });
  } catch (error) {
    throw new StepError(`Could not reach ${service} at ${new URL(url).origin} to read the approvals (${(error as Error).message}).`, {
      hint: 'Check the API URL input and the network of the runner.',
    });
  }
  const text = await response.text();
  if (!response.ok) {
    const detail = safeMessage(text);
    throw new StepError(`${service} answered ${response.status} to GET ${url}${detail ? `: ${detail}` : ''}.`, {
      hint:
        response.status === 401 || response.status === 403 || response.status === 404
          ? authHint
          : 'Try again; if it persists, check the service status.',
    });
  }
  try {
    return parseJsonBounded(text);
  } catch {
    throw new StepError(`${service} answered GET ${url} with something that is not JSON.`, {
      hint: 'Check the API URL input: it must be the REST API root.',
    });
  }
}

function safeMessage(text: string): string {
  try {
    const parsed = JSON.parse(text) as { message?: string };
    return typeof parsed.message === 'string' ? parsed.message.slice(0, 200) : '';
  } catch {
    return text.slice(0, 200);
  }
}

export interface ApprovalPolicy {
  requireApproval: boolean;
  minApprovals: number;
  noSelfApproval: boolean;
  /** Who triggered the run. */
  actor?: string;
}

/**
 * Counts distinct approvers, minus the run's own actor when self-approval does not count, and refuses when the
 * policy asks for more. Returns the evidence de-duplicated; a self-approval stays on record, it just does not count.
 */
export function enforceApprovalPolicy(evidence: ApprovalEvidence, policy: ApprovalPolicy): ApprovalEvidence {
  // Without the actor, "not by the person who started the run" cannot be checked; counting every approval would
  // silently drop the rule the pipeline asked for.
  if (policy.noSelfApproval && !policy.actor?.trim()) {
    throw new StepError(
      'no-self-approval is set, but who started this run is unknown, so a self-approval cannot be told apart from an independent one.',
      {
        hint: 'Run where the platform names the actor (GitHub: github.actor; Azure DevOps: Build.RequestedFor; the CLI: USER), or leave no-self-approval off.',
      },
    );
  }
  const seen = new Set<string>();
  const counted = evidence.approvers.filter((a) => {
    const key = a.login.toLowerCase();
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  const self = policy.actor?.toLowerCase();
  const independent = policy.noSelfApproval && self ? counted.filter((a) => a.login.toLowerCase() !== self) : counted;
  const needed = policy.requireApproval ? Math.max(1, policy.minApprovals) : 0;
  if (independent.length < needed) {
    const excluded = counted.length - independent.length;
    throw new StepError(
      `Promotion needs ${needed} distinct approval(s)${policy.noSelfApproval ? ` from someone other than ${policy.actor ?? 'the person who started the run'}` : ''}, but found ${independent.length} (source: ${evidence.source}${counted.length ? `; approvers: ${counted.map((a) => a.login).join(', ')}` : ''}${excluded ? `; ${excluded} self-approval not counted` : ''}).`,
      {
        hint:
          evidence.source === 'github-environment'
            ? 'Run this job in a GitHub environment with required reviewers, and give github-token so the step can read the approvals.'
            : evidence.source === 'azure-devops'
              ? 'Put the stage behind an environment with an Approvals check (or a ManualValidation task) and map System.AccessToken.'
              : 'Name the approvers with approved-by (CLI), or run in a pipeline with approvals.',
      },
    );
  }
  return { ...evidence, approvers: counted };
}
