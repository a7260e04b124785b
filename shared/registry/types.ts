/**
 * The model registry seen by every step: submit-training registers candidates, gate-metrics reads the
 * production model's metrics, promote-release moves stages. Local file registry is the default; SageMaker
 * Model Registry, Azure ML model versions and the MLflow Model Registry implement the same interface.
 */
export type ModelStage = 'candidate' | 'staging' | 'production' | 'archived';
export type ApprovalStatus = 'pending' | 'approved' | 'rejected';

export interface ApprovalEvidence {
  approvers: { login: string; at: string; comment?: string }[];
  source: 'github-environment' | 'azure-devops' | 'cli' | 'none';
  runUrl?: string;
}

export interface ModelVersion {
  /** Model name (SageMaker model package group, Azure ML model name). */
  name: string;
  /** Registry-assigned version (monotonic per name). */
  version: string;
  artifactUri: string;
  /** Headline and per-class metrics, e.g. { "mAP": 0.51, "dice": 0.83 }. */
  metrics: Record<string, number>;
  dataFingerprint?: string;
  gitCommit?: string;
  trainingJob?: string;
  stage: ModelStage;
  approval: ApprovalStatus;
  createdAt: string;
  /** Free-form extra properties (tags). */
  properties: Record<string, string>;
  /** Who approved the last stage change, when one was recorded. */
  evidence?: ApprovalEvidence;
}

export interface RegisterModelInput {
  name: string;
  artifactUri: string;
  metrics: Record<string, number>;
  dataFingerprint?: string;
  gitCommit?: string;
  trainingJob?: string;
  properties?: Record<string, string>;
}

export interface ModelRegistry {
  readonly kind: 'local' | 'sagemaker' | 'azureml' | 'mlflow';
  /** Where the production version is looked up, for messages (e.g. `alias "champion" at https://…`). */
  readonly productionMarker?: string;
  register(input: RegisterModelInput): Promise<ModelVersion>;
  get(name: string, version: string): Promise<ModelVersion | undefined>;
  list(name: string): Promise<ModelVersion[]>;
  /** The version currently in `production`, if any. */
  production(name: string): Promise<ModelVersion | undefined>;
  /** Moves a version to a stage; promoting to production archives the previous production version. */
  setStage(name: string, version: string, stage: ModelStage, options?: StageOptions): Promise<ModelVersion>;
}

/** What a stage change records besides the stage: the approval status and its evidence. */
export interface StageOptions {
  approval?: ApprovalStatus;
  evidence?: ApprovalEvidence;
}
