// What one run has done so far: counts, job ids, per-member errors (capped) and whether it is partial, with a
// throttled progress callback that keeps the log row current while the run goes.
import type { KlaviyoClient } from '../klaviyo-client.js';
import { emptyCounts, MAX_LOGGED_ERRORS, type Counts, type MemberError } from './runs.js';
import type { AudienceMembers } from '../store/audience-types.js';

export interface RunProgress {
  listId?: string;
  counts: Counts;
  jobIds: string[];
  errors: MemberError[];
  errorsOmitted: number;
}

export class RunRecorder {
  readonly counts = emptyCounts();
  readonly jobIds: string[] = [];
  readonly errors: MemberError[] = [];
  errorsOmitted = 0;
  /** Some members failed (a Klaviyo 4xx or import error): the run ends `partial`. */
  partial = false;
  listId?: string;
  private lastReport = 0;

  constructor(private readonly onProgress?: (p: RunProgress) => Promise<void> | void) {}

  error(e: MemberError): void {
    if (this.errors.length < MAX_LOGGED_ERRORS) this.errors.push(e);
    else this.errorsOmitted++;
  }

  /** `n` members failed for good in this run. */
  failed(n: number): void {
    if (!n) return;
    this.counts.failed += n;
    this.partial = true;
  }

  progress(): RunProgress {
    return { listId: this.listId, counts: this.counts, jobIds: this.jobIds, errors: this.errors, errorsOmitted: this.errorsOmitted };
  }

  /** Report progress at most once a second, unless forced. Resolves once the report is written. */
  async report(force = false): Promise<void> {
    if (!this.onProgress || (!force && Date.now() - this.lastReport < 1000)) return;
    this.lastReport = Date.now();
    await this.onProgress(this.progress());
  }
}

/** What each phase of a run (import jobs, consent, removals) works with. */
export interface RunScope {
  klaviyo: KlaviyoClient;
  state: AudienceMembers;
  rec: RunRecorder;
  listId: string;
  runId: number;
  signal?: AbortSignal;
}
