// The import job lifecycle of a run (≤ 10,000 profiles and ≤ 5 MB per job; resumable): submit a chunk, record it as in
// flight the moment Klaviyo accepts it, poll it with sleeps, fetch its import errors, and only then fold the
// accepted members into the diff state. A run killed in between finds the job on its next start and folds it in
// instead of importing it again.
import { KlaviyoError } from '../klaviyo-client.js';
import * as calls from './klaviyo-calls.js';
import type { importProfileEntry } from './payloads.js';
import { releaseMemory } from './memory.js';
import type { RunScope } from './run-recorder.js';
import type { SentMember } from '../store/audience-types.js';

/** How long an import job may stay unfinished before the run gives up (it is resumed by the next run). */
const MAX_JOB_WAIT_MS = 30 * 60_000;

export interface ImporterOptions extends RunScope {
  /** Jobs kept in flight while the next chunk is built. */
  maxInflight: number;
  /** First wait between polls of a job; grows to pollMaxMs. */
  pollIntervalMs?: number;
  pollMaxMs?: number;
  onEvent?: (e: { type: 'job-submitted' | 'job-committed'; jobId: string }) => void;
}

interface Inflight {
  jobId: string;
  submittedAt: number;
  members: SentMember[];
  /** Keys still in the source whose import failed: their old state stays and they are not "left". */
  stale: string[];
}

/** Profile `index` from a Klaviyo error pointer such as `/data/attributes/profiles/data/12/attributes/email`. */
export const pointerIndex = (pointer?: string) => {
  const m = /\/profiles\/data\/(\d+)/.exec(pointer ?? '');
  return m ? Number(m[1]) : undefined;
};

export function createImporter(o: ImporterOptions) {
  const { klaviyo, state, rec, signal } = o;
  const { clock } = klaviyo;
  const inflight: Inflight[] = [];
  /** Members of a killed run's jobs that this run confirmed: counted when the source shows them, not twice. */
  const resumedKeys = new Set<string>();

  async function pollUntilDone(jobId: string, submittedAt: number) {
    let wait = o.pollIntervalMs ?? 500;
    // A job is never done the instant it is accepted: the first read waits until it is `wait` old, so a
    // pipelined job (already older) is read at once and a lone one costs one read, not several.
    await clock.sleep(Math.max(0, submittedAt + wait - clock.now()), signal);
    const deadline = clock.now() + MAX_JOB_WAIT_MS;
    for (;;) {
      const job = await calls.getImportJob(klaviyo, jobId, signal);
      if (job.status === 'complete' || job.status === 'cancelled') return job;
      if (clock.now() > deadline) throw new Error(`import job ${jobId} is still ${job.status} after ${MAX_JOB_WAIT_MS / 60_000} minutes; the next run picks it up`);
      await clock.sleep(wait, signal);
      wait = Math.min(wait * 1.5, o.pollMaxMs ?? 10_000);
    }
  }

  /** Members Klaviyo reported import errors for, each logged with Klaviyo's detail. */
  async function rejectedMembers(job: Inflight, reported: number): Promise<Set<string>> {
    const failed = new Set<string>();
    const byIdentifier = new Map<string, string>();
    for (const m of job.members) {
      if (m.external_id) byIdentifier.set(`x:${m.external_id}`, m.key);
      if (m.email) byIdentifier.set(`e:${m.email}`, m.key);
      if (m.phone_number) byIdentifier.set(`p:${m.phone_number}`, m.key);
    }
    let unattributed = 0;
    const conflicts: { member: SentMember; detail: string }[] = [];
    for (const e of await calls.getImportErrors(klaviyo, job.jobId, signal)) {
      const p = e.payload ?? {};
      const key =
        (p.external_id && byIdentifier.get(`x:${p.external_id}`)) ||
        (p.email && byIdentifier.get(`e:${String(p.email).toLowerCase()}`)) ||
        (p.phone_number && byIdentifier.get(`p:${p.phone_number}`)) ||
        job.members[pointerIndex(e.pointer) ?? -1]?.key;
      if (key) failed.add(key);
      else unattributed++;
      const member = key ? job.members.find((m) => m.key === key) : undefined;
      if (e.code === 'duplicate_profile' && member) conflicts.push({ member, detail: e.detail });
      else rec.error({ stage: 'import', jobId: job.jobId, member: key, detail: e.detail });
    }
    if (conflicts.length) await reportConflicts(job.jobId, conflicts);
    // An error we cannot tie to a member means we cannot know who was accepted: nobody's state moves, so the
    // next run sends them again (an idempotent upsert) rather than trusting an unconfirmed import.
    if (unattributed > 0 || failed.size < reported) for (const m of job.members) failed.add(m.key);
    return failed;
  }

  /**
   * Members whose identifiers Klaviyo found on different profiles (409 duplicate_profile, as in
   * https://github.com/klaviyo/klaviyo-api-node/issues/75): each is logged with the profiles holding them, looked
   * up by identifier, so an operator can merge them in Klaviyo. Their state does not move; the next run retries.
   */
  async function reportConflicts(jobId: string, conflicts: { member: SentMember; detail: string }[]) {
    const holders = new Map<string, Map<string, string[]>>();
    for (const field of ['external_id', 'email', 'phone_number'] as const) {
      const values = [...new Set(conflicts.map((c) => c.member[field]).filter((v): v is string => !!v))];
      if (values.length) holders.set(field, await calls.lookupProfileIds(klaviyo, field, values, signal));
    }
    for (const { member, detail } of conflicts) {
      const held: string[] = [];
      const ids = new Set<string>();
      for (const field of ['external_id', 'email', 'phone_number'] as const) {
        const value = member[field];
        const found = value ? holders.get(field)?.get(field === 'email' ? value.toLowerCase() : value) : undefined;
        if (!found?.length) continue;
        held.push(`${field} on ${found.join(', ')}`);
        found.forEach((id) => ids.add(id));
      }
      rec.error({
        stage: 'import', jobId, member: member.key, profile_ids: [...ids],
        detail: `${detail} Klaviyo keeps this member's identifiers on different profiles (${held.join('; ') || 'not found'}); merge them in Klaviyo, then the next run imports the member.`,
      });
    }
  }

  /** Fold a finished job into the state. A resumed job's members are counted by the run's diff, not here:
   * they are read from the source again, and a member is counted once per run. */
  async function finish(job: Inflight, seenRun = o.runId, resumed = false) {
    const status = await pollUntilDone(job.jobId, job.submittedAt);
    let failed = new Set<string>();
    if (status.status === 'cancelled') {
      failed = new Set(job.members.map((m) => m.key));
      rec.error({ stage: 'import', jobId: job.jobId, detail: `import job ${job.jobId} was cancelled by Klaviyo; its ${job.members.length} members are sent again on the next run` });
    } else if (status.failed > 0) {
      failed = await rejectedMembers(job, status.failed);
    }
    if (resumed) {
      for (const m of job.members) if (!failed.has(m.key)) resumedKeys.add(m.key);
    } else {
      rec.counts.imported += job.members.length - failed.size;
      rec.failed(failed.size);
    }
    await state.commitJob(job.jobId, [...failed], seenRun, [...job.stale, ...failed]);
    o.onEvent?.({ type: 'job-committed', jobId: job.jobId });
    releaseMemory();
    rec.report();
  }

  return {
    /**
     * Jobs Klaviyo accepted in a run that died are folded in, never imported again. Their members get
     * seen_run 0: they count as present only once this run's source shows them again.
     */
    async resume() {
      for (const job of await state.inflight()) {
        if (job.listId !== o.listId) continue;
        rec.jobIds.push(job.jobId);
        await finish({ jobId: job.jobId, submittedAt: 0, members: job.members, stale: [] }, 0, true).catch(async (err) => {
          if (!(err instanceof KlaviyoError && err.status === 404)) throw err;
          // Expired in Klaviyo: drop the record; its members are simply sent again.
          await state.commitJob(job.jobId, job.members.map((m) => m.key), 0, []);
        });
      }
    },

    /** Send one chunk. A job Klaviyo rejects (4xx) is logged per member; when its errors point at single
     * profiles, those are dropped and the rest is sent once more (never a retry loop). */
    async submit(chunk: ReturnType<typeof importProfileEntry>[], chunkMembers: SentMember[], stale: string[]) {
      if (!chunk.length) return;
      let entries = chunk;
      let members = chunkMembers;
      let jobId: string | undefined;
      for (let attempt = 0; attempt < 2 && !jobId; attempt++) {
        try {
          jobId = await calls.submitImportJob(klaviyo, entries, o.listId, signal);
        } catch (err) {
          if (!calls.isFinal4xx(err)) throw err;
          const bad = new Set(err.errors.map((e) => pointerIndex(e.source?.pointer)).filter((i): i is number => i !== undefined));
          const blamed = attempt === 0 && bad.size > 0 && bad.size < entries.length ? bad : new Set(entries.map((_, i) => i));
          rec.failed(blamed.size);
          for (const i of blamed) {
            rec.error({ stage: 'import', member: members[i].key, detail: err.errors.find((e) => pointerIndex(e.source?.pointer) === i)?.detail ?? err.detail });
          }
          stale.push(...members.filter((_, i) => blamed.has(i)).map((m) => m.key));
          entries = entries.filter((_, i) => !blamed.has(i));
          members = members.filter((_, i) => !blamed.has(i));
          if (!entries.length) break;
        }
      }
      if (!jobId) {
        if (stale.length) await state.commitJob('', [], o.runId, stale);
        return;
      }
      // The log row lists the job before the job is recorded as in flight, so a process killed at any point
      // leaves a row naming every job it submitted.
      rec.jobIds.push(jobId);
      await rec.report(true);
      await state.recordInflight(jobId, o.listId, members);
      o.onEvent?.({ type: 'job-submitted', jobId });
      inflight.push({ jobId, submittedAt: clock.now(), members, stale });
      while (inflight.length > o.maxInflight) await finish(inflight.shift()!);
    },

    /** Whether this run imported `key` by confirming a killed run's job. */
    confirmedOnResume: (key: string) => resumedKeys.has(key),

    /** Wait for every job in flight and fold it in. */
    async drain() {
      while (inflight.length) await finish(inflight.shift()!);
    },
  };
}

export type Importer = ReturnType<typeof createImporter>;
