// GET /orch/api/v1/timeline?since=&until= through the controller's API client (api.ts has no
// method for it): who held which GPU or slot in a window of time. The answer is checked field
// by field so that a partial or newer answer draws what it can.
import type { OrchApi } from '../api';
import type { ISpan, ITimelineResponse, ITimelineWorker } from './timelinemodel';

function num(v: unknown, fallback: number): number {
  return typeof v === 'number' && isFinite(v) ? v : fallback;
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

export function parseTimeline(body: unknown, since: number, until: number): ITimelineResponse {
  const b = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
  const workers: ITimelineWorker[] = [];
  for (const raw of Array.isArray(b.workers) ? b.workers : []) {
    const w = raw as Record<string, unknown>;
    if (typeof w?.id !== 'string') {
      continue;
    }
    workers.push({
      id: w.id,
      name: str(w.name) || w.id,
      state: str(w.state) || 'unknown',
      slots: num(w.slots, 1),
      gpus: (Array.isArray(w.gpus) ? w.gpus : [])
        .map(g => g as Record<string, unknown>)
        .filter(g => typeof g?.index === 'number')
        .map(g => ({ index: g.index as number, name: str(g.name) ?? str(g.model) ?? undefined }))
    });
  }
  const spans: ISpan[] = [];
  for (const raw of Array.isArray(b.spans) ? b.spans : []) {
    const s = raw as Record<string, unknown>;
    if (typeof s?.worker_id !== 'string' || typeof s.started_at !== 'number') {
      continue;
    }
    spans.push({
      task_id: str(s.task_id),
      name: str(s.name),
      owner: str(s.owner),
      mine: s.mine === true,
      attempt: num(s.attempt, 1),
      state: str(s.state) || 'unknown',
      worker_id: s.worker_id,
      gpus: Array.isArray(s.gpus) ? (s.gpus.filter(g => typeof g === 'number') as number[]) : [],
      started_at: s.started_at,
      ended_at: typeof s.ended_at === 'number' ? s.ended_at : null
    });
  }
  return {
    since: num(b.since, since),
    until: num(b.until, until),
    now: num(b.now, Date.now() / 1000),
    workers,
    spans
  };
}

export async function fetchTimeline(api: OrchApi, since: number, until: number): Promise<ITimelineResponse> {
  const body = await api.request<unknown>('GET', 'timeline', {
    query: { since, until },
    what: 'reading the GPU timeline'
  });
  return parseTimeline(body, since, until);
}
