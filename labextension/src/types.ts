// Shapes of the /orch/api/v1 JSON (see jupyter_orch/server/openapi.py).

export type TaskState =
  | 'pending'
  | 'scheduled'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'cancelled'
  | 'upstream_failed';

export const TASK_STATES: TaskState[] = [
  'pending',
  'scheduled',
  'running',
  'succeeded',
  'failed',
  'cancelled',
  'upstream_failed'
];

export const ACTIVE_STATES = new Set<string>(['pending', 'scheduled', 'running']);

export interface IResources {
  cpus?: number;
  memory?: string | number | null;
  gpus?: number;
  gpu_type?: string | null;
  labels?: Record<string, string>;
}

export interface ITask {
  id: string;
  name: string;
  kind: string;
  owner: string;
  state: TaskState | string;
  resources: IResources;
  attempt: number;
  created_at: number;
  updated_at?: number;
  started_at?: number | null;
  ended_at?: number | null;
  duration?: number | null;
  worker_id?: string | null;
  gpus?: number[];
  reason?: string | null;
  error?: string | null;
  error_kind?: string | null;
  traceback?: string | null;
  notebook_url?: string | null;
  metadata?: Record<string, unknown>;
  image?: string | null;
}

export interface IStep {
  name: string;
  base?: string;
  kind: string;
  target?: string;
  task_id: string;
  depends: string[];
  state: string;
  cached?: boolean;
  reason?: string | null;
  error?: string | null;
  error_kind?: string | null;
  attempt?: number;
  worker_id?: string | null;
  started_at?: number | null;
  ended_at?: number | null;
  duration?: number | null;
  notebook_url?: string | null;
}

export interface IRun {
  id: string;
  name: string;
  owner: string;
  state: string;
  params: Record<string, unknown>;
  created_at: number;
  updated_at?: number;
  ended_at?: number | null;
  duration?: number | null;
  step_count: number;
  steps?: IStep[];
  run_dir?: string;
}

export interface IGpu {
  index: number;
  uuid?: string;
  model?: string;
  memory?: number;
  utilization?: number;
  memory_used?: number;
  memory_total?: number;
  task_id?: string | null;
  /** held by a task: another user's when task_id is null (its id is not shown to this user) */
  busy?: boolean;
}

export interface IWorker {
  id: string;
  name: string;
  provider?: string;
  state: string;
  hostname?: string;
  labels: Record<string, string>;
  image?: string | null;
  slots: number;
  slots_used: number;
  cpus: number;
  memory: number;
  gpus: IGpu[];
  running?: string[];
  metrics?: Record<string, number>;
  last_seen?: number;
}

export interface IClusterNode {
  name: string;
  gpu_type?: string | null;
  allocatable: number;
  requested: number;
  free: number;
  schedulable?: boolean;
}

export interface IProviderInfo {
  name?: string;
  hint?: string;
  cluster?: {
    nodes?: IClusterNode[];
    gpus_free?: number;
    error?: string | null;
    updated_at?: number | null;
  };
  [key: string]: unknown;
}

/** a checkpoint a task saved (jupyter_orch.checkpoint.save), as GET tasks/{id}/checkpoints lists it */
export interface ICheckpoint {
  id: string;
  attempt: number;
  step: number | null;
  metadata: Record<string, unknown>;
  size: number;
  files: string[];
  created: number;
  url: string;
}

export interface ILogLine {
  ts: number;
  stream: string;
  text: string;
}

export interface IParameter {
  name: string;
  default: unknown;
  type?: string | null;
  help?: string | null;
}

/** What the caller may do beyond their own work (JupyterHub scopes, hub admins). */
export interface IRights {
  /** read everyone's work: custom:orch:read-all (the admin view) */
  read_all: boolean;
  /** change everyone's work: custom:orch:admin or a hub admin (cancel anyone's task) */
  admin: boolean;
}

export interface IInfo {
  version: string;
  owner: string;
  /** several users share this server (owner_from=identity) */
  shared?: boolean;
  rights?: IRights;
  provider?: string | null;
  counts?: Record<string, number>;
  workers?: number;
}

/** A quota in force; null: no limit. */
export interface ILimits {
  gpus: number | null;
  gpu_types: Record<string, number>;
  running: number | null;
  queued: number | null;
}

/** What a user or a group holds now (GET /admin/holdings). */
export interface IUse {
  running: number;
  queued: number;
  gpus: number;
  gpu_models: Record<string, number>;
  gpu_types: Record<string, number>;
  cpus: number;
  limits: ILimits;
}

export interface IUserHolding extends IUse {
  user: string;
  groups: string[];
  weight: number;
  recent_gpu_hours: number;
}

export interface IGroupHolding extends IUse {
  group: string;
  members: string[];
  weight: number;
}

export interface IHoldings {
  at: number;
  fair_share: boolean;
  capacity: { workers: number; gpus: number; slots: number };
  totals: { running: number; queued: number; gpus: number };
  users: IUserHolding[];
  groups: IGroupHolding[];
}

/** A trial's state: planned (not started yet), running (its task submitted), stopping (a stop
 * was decided, its task has not ended yet), then succeeded, failed, cancelled or stopped. */
export type TrialState = 'planned' | 'running' | 'stopping' | 'succeeded' | 'failed' | 'cancelled' | 'stopped';

/** A row of a search's trials table (jupyter_orch/core/search.py SearchState.table()). */
export interface ITrial {
  number: number;
  task_id: string | null;
  params: Record<string, unknown>;
  state: TrialState | string;
  /** the best value of the metric at any of its steps, and that step */
  best: number | null;
  best_step: number | null;
  /** the last value reported, and its step */
  last?: number | null;
  step?: number | null;
  /** the step of the highest ASHA rung it reached */
  rung?: number | null;
  /** why it was stopped (ASHA) */
  reason?: string | null;
}

export interface ISearchBest {
  number: number;
  params: Record<string, unknown>;
  task_id: string | null;
  value: number;
  step: number | null;
  state: string;
}

export interface ISearchConfig {
  metric?: string;
  mode?: 'min' | 'max' | string;
  scheduler?: string;
  max_trials?: number | null;
  max_concurrent?: number;
  max_t?: number | null;
  [key: string]: unknown;
}

/** A hyperparameter search (GET /searches, /searches/{id}; `trials` only in the latter). */
export interface ISearch {
  id: string;
  name: string;
  owner: string;
  state: 'running' | 'succeeded' | 'failed' | 'cancelled' | string;
  config: ISearchConfig;
  space: Record<string, unknown>;
  task?: Record<string, unknown>;
  /** trials per state, and `total` (the trials it runs at most) */
  counts: Record<string, number>;
  best: ISearchBest | null;
  created_at: number;
  updated_at?: number;
  ended_at?: number | null;
  error?: string | null;
  /** a workflow step's search: the step's task, run and name (null: a search from the SDK) */
  step?: { task_id?: string; run?: string; name?: string } | null;
  /** best first */
  trials?: ITrial[];
}

export type OrchEvent =
  | { type: 'hello'; seq?: number; workers?: IWorker[] }
  | { type: 'task'; task: ITask }
  | { type: 'worker'; worker: IWorker }
  | { type: 'run'; run: IRun }
  | { type: 'search'; search: ISearch; owner?: string }
  | { type: 'overflow'; message?: string };
