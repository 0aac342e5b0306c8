// Bulk jobs: queued → processing → complete, with counts and import errors. The work runs at completion, so
// a test can watch a job move through its states (jobDelayMs) before its effects appear.
import { ulid } from '../ids.js';

export type JobStatus = 'queued' | 'processing' | 'complete' | 'cancelled';

export interface ImportError {
  id: string;
  code: string;
  title: string;
  detail: string;
  source: { pointer: string };
  original_payload: unknown;
}

export interface Job {
  id: string;
  type: string;
  status: JobStatus;
  created_at: string;
  started_at?: string;
  completed_at?: string;
  expires_at?: string;
  total_count: number;
  completed_count: number;
  failed_count: number;
  errors: ImportError[];
  listIds: string[];
  /** What the job did that Klaviyo would only warn about (e.g. a global unsubscribe). */
  notes: string[];
}

export interface JobOutcome {
  completed: number;
  errors?: ImportError[];
  notes?: string[];
}

export class JobStore {
  readonly byId = new Map<string, Job>();
  private readonly timers = new Map<NodeJS.Timeout, () => void>();

  constructor(private readonly delayMs: number) {}

  /** Queues a job; `work` runs when it completes. */
  submit(type: string, total: number, listIds: string[], work: () => JobOutcome): Job {
    const job: Job = {
      id: ulid(),
      type,
      status: 'queued',
      created_at: new Date().toISOString(),
      total_count: total,
      completed_count: 0,
      failed_count: 0,
      errors: [],
      listIds,
      notes: [],
    };
    this.byId.set(job.id, job);
    this.later(this.delayMs / 2, () => {
      // Timers of different durations can fire out of order on a busy loop: never move a finished job back.
      if (job.status !== 'queued') return;
      job.status = 'processing';
      job.started_at = new Date().toISOString();
    });
    this.later(this.delayMs, () => {
      if (job.status === 'cancelled') return;
      if (!job.started_at) job.started_at = new Date().toISOString();
      let outcome: JobOutcome;
      try {
        outcome = work();
      } catch (err) {
        // A job must never take the sandbox down; it ends visibly failed instead.
        job.status = 'cancelled';
        job.failed_count = job.total_count;
        job.notes = [`job failed: ${(err as Error)?.message ?? err}`];
        job.completed_at = new Date().toISOString();
        return;
      }
      job.errors = outcome.errors ?? [];
      job.notes = outcome.notes ?? [];
      job.completed_count = outcome.completed;
      job.failed_count = job.errors.length;
      job.status = 'complete';
      job.completed_at = new Date().toISOString();
      job.expires_at = new Date(Date.now() + 7 * 86_400_000).toISOString();
    });
    return job;
  }

  get(id: string): Job | undefined {
    return this.byId.get(id);
  }

  all(): Job[] {
    return [...this.byId.values()];
  }

  /** Runs every queued job now (tests that do not want to wait). */
  flush(): void {
    const pending = [...this.timers];
    this.timers.clear();
    for (const [t, fn] of pending) {
      clearTimeout(t);
      fn();
    }
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    t.unref?.();
    this.timers.set(t, fn);
  }

  clear(): void {
    for (const t of this.timers.keys()) clearTimeout(t);
    this.timers.clear();
    this.byId.clear();
  }
}
