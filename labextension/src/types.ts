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

export interface IInfo {
  version: string;
  owner: string;
  provider?: string | null;
  counts?: Record<string, number>;
  workers?: number;
}

export type OrchEvent =
  | { type: 'hello'; seq?: number; workers?: IWorker[] }
  | { type: 'task'; task: ITask }
  | { type: 'worker'; worker: IWorker }
  | { type: 'run'; run: IRun }
  | { type: 'overflow'; message?: string };
