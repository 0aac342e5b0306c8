// One audience sync run (SPEC §3 "Audience syncs", steps 1–9): resolve the list, stream and map the members,
// diff them against what Klaviyo confirmed before, import the new and changed ones in job-sized chunks, apply
// consent, remove members who left, and log the run. The diff state only ever moves when Klaviyo confirmed a
// job, and accepted jobs are recorded before they are polled, so a killed run resumes without re-importing.
import { hash } from 'node:crypto';
import type { Db } from '../store/db.js';
import { KlaviyoError, type KlaviyoClient } from '../klaviyo-client.js';
import type { AudienceDefinition } from './definition.js';
import { createMapper, type ProfileAttributes, type SourceMember } from './mapping.js';
import { streamSegment, segmentMemberKey } from './segment.js';
import { streamFile, resolveSourcePath, type FileItem } from './file-source.js';
import { LIMITS, importProfileEntry, importEnvelopeBytes, memberChannels, type Channel } from './payloads.js';
import { audienceState, type AudienceState, type SentMember, type LeftMember } from './store.js';
import { emptyCounts, MAX_LOGGED_ERRORS, type Counts, type MemberError, type RunStatus } from './runs.js';
import * as calls from './klaviyo-calls.js';
import { releaseMemory } from './memory.js';

export interface RunOptions {
  db: Db;
  klaviyo: KlaviyoClient;
  definition: AudienceDefinition;
  configDir: string;
  defaultPhoneRegion?: string;
  /** Log row id; absent for dry runs, which write nothing. */
  runId?: number;
  dryRun?: boolean;
  signal?: AbortSignal;
  /** Import jobs kept in flight while the next chunk is built. */
  maxInflightJobs?: number;
  /** First wait between polls of an import job; grows to pollMaxMs. */
  pollIntervalMs?: number;
  pollMaxMs?: number;
  /** Profiles per import job; Klaviyo's limit (10,000) unless lower (tests). */
  maxProfilesPerJob?: number;
  /** Payloads kept as a sample in a dry run. */
  sampleSize?: number;
  /** Progress hook (log row updates, tests). */
  onProgress?: (p: RunProgress) => void;
  onEvent?: (e: { type: 'job-submitted' | 'job-committed'; jobId: string }) => void;
}

export interface RunProgress {
  listId?: string;
  counts: Counts;
  jobIds: string[];
  errors: MemberError[];
  errorsOmitted: number;
}

export interface RunResult extends RunProgress {
  status: Exclude<RunStatus, 'running'>;
  error?: string;
  /** Dry runs: what would be sent. */
  plan?: DryRunPlan;
}

export interface DryRunPlan {
  list: calls.ResolvedList;
  requests: { importJobs: number; subscribeJobs: number; unsubscribeJobs: number; removeCalls: number };
  sample: { importProfiles: unknown[] };
}

type Entry = ReturnType<typeof importProfileEntry>;
interface Pending {
  entries: Entry[];
  members: SentMember[];
  bytes: number;
  index: Map<string, number>;
}
interface Inflight {
  jobId: string;
  submittedAt: number;
  members: SentMember[];
  /** Keys whose import failed but who are still in the source (their old state stays; they are not "left"). */
  stale: string[];
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** How long an import job may stay unfinished before the run gives up (it is resumed by the next run). */
const MAX_JOB_WAIT_MS = 30 * 60_000;

const hashPayload = (listId: string, json: string) => hash('sha1', `${listId}\n${json}`, 'base64url');

/** Members diffed per state query. */
const DIFF_BATCH = 500;

/** The source as one async stream of members (or per-line errors). */
async function* sourceItems(opts: RunOptions): AsyncGenerator<FileItem> {
  const source = opts.definition.source;
  if (source.type === 'segment') {
    for (const member of streamSegment(opts.db, source.rules)) yield { member };
  } else {
    yield* streamFile(resolveSourcePath(source.path, opts.configDir), source.format);
  }
}

/** Profile `index` from a Klaviyo error pointer such as `/data/attributes/profiles/data/12/attributes/email`. */
const pointerIndex = (pointer?: string) => {
  const m = /\/profiles\/data\/(\d+)/.exec(pointer ?? '');
  return m ? Number(m[1]) : undefined;
};

export async function executeRun(opts: RunOptions): Promise<RunResult> {
  const { definition: def, klaviyo, signal } = opts;
  const dryRun = !!opts.dryRun;
  const runId = opts.runId ?? 0;
  const state = audienceState(opts.db, def.name);
  const counts = emptyCounts();
  const jobIds: string[] = [];
  const errors: MemberError[] = [];
  let errorsOmitted = 0;
  let partial = false;
  let listId: string | undefined;
  const plan: DryRunPlan = { list: {}, requests: { importJobs: 0, subscribeJobs: 0, unsubscribeJobs: 0, removeCalls: 0 }, sample: { importProfiles: [] } };
  const channels = def.subscription as Channel[];
  const maxInflight = opts.maxInflightJobs ?? 2;
  const jobSize = Math.min(opts.maxProfilesPerJob ?? LIMITS.importProfiles, LIMITS.importProfiles);

  const logError = (e: MemberError) => {
    if (errors.length < MAX_LOGGED_ERRORS) errors.push(e);
    else errorsOmitted++;
  };
  const progress = (): RunProgress => ({ listId, counts, jobIds, errors, errorsOmitted });
  let lastProgress = 0;
  const reportProgress = (force = false) => {
    if (!opts.onProgress || (!force && Date.now() - lastProgress < 1000)) return;
    lastProgress = Date.now();
    opts.onProgress(progress());
  };
  /** A Klaviyo 4xx (not retryable): the affected members are logged with Klaviyo's detail; the run goes on, partial. */
  const isFinal4xx = (err: unknown): err is KlaviyoError => err instanceof KlaviyoError && !err.retryable;

  try {
    // 1. Resolve or create the list.
    const listSpec = JSON.stringify(def.list);
    const list = await calls.resolveList(klaviyo, def.list, { dryRun, remembered: state.rememberedList(listSpec), signal });
    plan.list = list;
    listId = list.id;
    if (!dryRun) state.rememberList(listSpec, listId!);
    reportProgress(true);

    // Import job lifecycle: submit (recorded as in flight), poll with sleeps, fetch errors, commit confirmed members.
    const inflight: Inflight[] = [];

    async function pollUntilDone(jobId: string, submittedAt: number) {
      let wait = opts.pollIntervalMs ?? 500;
      // A job is never done the instant it is accepted: the first read waits until it is `wait` old, so a
      // pipelined job (already older) is read at once and a lone one costs one read, not several.
      await sleep(Math.max(0, submittedAt + wait - Date.now()), signal);
      const deadline = Date.now() + MAX_JOB_WAIT_MS;
      for (;;) {
        const job = await calls.getImportJob(klaviyo, jobId, signal);
        if (job.status === 'complete' || job.status === 'cancelled') return job;
        if (Date.now() > deadline) throw new Error(`import job ${jobId} is still ${job.status} after ${MAX_JOB_WAIT_MS / 60_000} minutes; the next run picks it up`);
        await sleep(wait, signal);
        wait = Math.min(wait * 1.5, opts.pollMaxMs ?? 10_000);
      }
    }

    async function finishJob(job: Inflight, seenRun = runId) {
      const status = await pollUntilDone(job.jobId, job.submittedAt);
      const failed = new Set<string>();
      if (status.status === 'cancelled') {
        for (const m of job.members) failed.add(m.key);
        logError({ stage: 'import', jobId: job.jobId, detail: `import job ${job.jobId} was cancelled by Klaviyo; its ${job.members.length} members are sent again on the next run` });
      } else if (status.failed > 0) {
        const byIdentifier = new Map<string, string>();
        for (const m of job.members) {
          if (m.external_id) byIdentifier.set(`x:${m.external_id}`, m.key);
          if (m.email) byIdentifier.set(`e:${m.email}`, m.key);
          if (m.phone_number) byIdentifier.set(`p:${m.phone_number}`, m.key);
        }
        let unattributed = 0;
        for (const e of await calls.getImportErrors(klaviyo, job.jobId, signal)) {
          const p = e.payload ?? {};
          const key =
            (p.external_id && byIdentifier.get(`x:${p.external_id}`)) ||
            (p.email && byIdentifier.get(`e:${String(p.email).toLowerCase()}`)) ||
            (p.phone_number && byIdentifier.get(`p:${p.phone_number}`)) ||
            job.members[pointerIndex(e.pointer) ?? -1]?.key;
          if (key) failed.add(key);
          else unattributed++;
          logError({ stage: 'import', jobId: job.jobId, member: key, detail: e.detail });
        }
        // An error we cannot tie to a member means we cannot know who was accepted: nobody's state moves, so
        // the next run sends them again (an idempotent upsert) rather than trusting an unconfirmed import.
        if (unattributed > 0 || failed.size < status.failed) for (const m of job.members) failed.add(m.key);
      }
      counts.imported += job.members.length - failed.size;
      if (failed.size) {
        counts.failed += failed.size;
        partial = true;
      }
      state.commitJob(job.jobId, [...failed], seenRun, [...job.stale, ...failed]);
      opts.onEvent?.({ type: 'job-committed', jobId: job.jobId });
      releaseMemory();
      reportProgress();
    }

    // 2a. Resume: jobs Klaviyo accepted in a run that died are folded in, never imported again. seen_run 0 keeps
    // them out of this run's membership until the source shows them again.
    if (!dryRun) {
      for (const job of state.inflight()) {
        if (job.listId !== listId) continue;
        jobIds.push(job.jobId);
        await finishJob({ jobId: job.jobId, submittedAt: 0, members: job.members, stale: [] }, 0).catch((err) => {
          if (!(err instanceof KlaviyoError && err.status === 404)) throw err;
          state.commitJob(job.jobId, job.members.map((m) => m.key), 0, []); // expired in Klaviyo: drop it; the members are simply sent again
        });
      }
    }

    async function submit(pending: Pending, stale: string[]) {
      if (!pending.entries.length) return;
      if (dryRun) {
        plan.requests.importJobs++;
        counts.imported += pending.entries.length;
        for (const e of pending.entries) if (plan.sample.importProfiles.length < (opts.sampleSize ?? 5)) plan.sample.importProfiles.push(e);
        return;
      }
      let entries = pending.entries;
      let members = pending.members;
      let jobId: string | undefined;
      for (let attempt = 0; attempt < 2 && !jobId; attempt++) {
        try {
          jobId = await calls.submitImportJob(klaviyo, entries, listId!, signal);
        } catch (err) {
          if (!isFinal4xx(err)) throw err;
          // Klaviyo rejected the job: when its errors point at profiles, drop those and send the rest once.
          const bad = new Set(err.errors.map((e) => pointerIndex(e.source?.pointer)).filter((i): i is number => i !== undefined));
          const blamed = attempt === 0 && bad.size > 0 && bad.size < entries.length ? bad : new Set(entries.map((_, i) => i));
          partial = true;
          for (const i of blamed) {
            counts.failed++;
            logError({ stage: 'import', member: members[i].key, detail: err.errors.find((e) => pointerIndex(e.source?.pointer) === i)?.detail ?? err.detail });
          }
          stale.push(...members.filter((_, i) => blamed.has(i)).map((m) => m.key));
          entries = entries.filter((_, i) => !blamed.has(i));
          members = members.filter((_, i) => !blamed.has(i));
          if (!entries.length) break;
        }
      }
      if (!jobId) {
        if (stale.length) state.commitJob('', [], runId, stale);
        return;
      }
      state.recordInflight(jobId, listId!, members);
      jobIds.push(jobId);
      opts.onEvent?.({ type: 'job-submitted', jobId });
      inflight.push({ jobId, submittedAt: Date.now(), members, stale });
      while (inflight.length > maxInflight) await finishJob(inflight.shift()!);
    }

    // 2–6. Stream, map, validate, diff, import in chunks.
    const mapMember = createMapper(def, {
      defaultPhoneRegion: opts.defaultPhoneRegion,
      sourceKey: def.source.type === 'segment' ? segmentMemberKey : undefined,
    });
    const envelope = importEnvelopeBytes(listId ?? 'XXXXXX');
    const fresh = (): Pending => ({ entries: [], members: [], bytes: envelope, index: new Map() });
    let pending = fresh();
    let staleKeys: string[] = [];
    let matchedExisting = 0;
    const wouldConsent = { n: 0 };

    type Mapped = { key: string; attributes: ProfileAttributes; consentedAt?: string; json: string; hash: string };
    let batch: Mapped[] = [];

    /** Diff a batch against the confirmed state with one query; queue the new and changed for import. */
    async function diffBatch(items: Mapped[]) {
      if (!items.length) return;
      const known = state.getMany(items.map((m) => m.key));
      const touched: string[] = [];
      for (const m of items) {
        const before = known.get(m.key);
        if (before) matchedExisting++;
        if (before && before.hash === m.hash) {
          counts.unchanged++;
          touched.push(m.key);
          continue;
        }
        const entryBytes = Buffer.byteLength(m.json) + 40; // {"type":"profile","attributes":…},
        if (entryBytes > LIMITS.importProfileBytes) {
          counts.failed++;
          partial = true;
          logError({ stage: 'import', member: m.key, detail: `profile is ${entryBytes} bytes; Klaviyo accepts at most ${LIMITS.importProfileBytes} per profile` });
          if (before) staleKeys.push(m.key);
          continue;
        }
        const a = m.attributes;
        const consent =
          def.consent !== 'never_subscribed' &&
          (!before || (channels.includes('email') && (before.email ?? undefined) !== a.email) || (channels.includes('sms') && (before.phone_number ?? undefined) !== a.phone_number));
        if (consent && memberChannels(a, channels).length) wouldConsent.n++;
        const sent: SentMember = { key: m.key, hash: m.hash, email: a.email, phone_number: a.phone_number, external_id: a.external_id, consented_at: m.consentedAt, consent };
        const dup = pending.index.get(m.key);
        if (dup !== undefined) {
          // The same member twice in one source: the later row wins, one profile is sent.
          pending.entries[dup] = importProfileEntry(a);
          pending.members[dup] = sent;
          continue;
        }
        if (pending.entries.length >= jobSize || pending.bytes + entryBytes > LIMITS.importBytes) {
          await submit(pending, staleKeys);
          pending = fresh();
          staleKeys = [];
        }
        pending.index.set(m.key, pending.entries.length);
        pending.entries.push(importProfileEntry(a));
        pending.members.push(sent);
        pending.bytes += entryBytes;
      }
      if (!dryRun) state.touchMany(touched, runId);
      reportProgress();
    }

    for await (const item of sourceItems(opts)) {
      if (signal?.aborted) throw signal.reason;
      if ('error' in item) {
        counts.invalid++;
        logError({ stage: 'source', detail: item.error });
        continue;
      }
      counts.read++;
      const outcome = mapMember(item.member as SourceMember);
      if (outcome.kind === 'anonymous') {
        counts.skipped_anonymous++;
        continue;
      }
      if (outcome.kind === 'invalid') {
        counts.invalid++;
        logError({ stage: 'validate', member: memberLabel(item.member), detail: outcome.reason });
        continue;
      }
      if (outcome.droppedFields.length) {
        counts.invalid_fields += outcome.droppedFields.length;
        logError({ stage: 'validate', member: outcome.key, detail: `invalid ${outcome.droppedFields.join(' and ')} dropped` });
      }
      const json = JSON.stringify(outcome.attributes);
      batch.push({ key: outcome.key, attributes: outcome.attributes, consentedAt: outcome.consentedAt, json, hash: hashPayload(listId ?? '', json) });
      if (batch.length >= DIFF_BATCH) {
        await diffBatch(batch);
        batch = [];
      }
    }
    await diffBatch(batch);
    await submit(pending, staleKeys);
    if (!dryRun) {
      while (inflight.length) await finishJob(inflight.shift()!);
    }

    // 7. Consent, for members Klaviyo confirmed on the list that are new to it or changed identifiers.
    if (dryRun) {
      if (def.consent === 'subscribed') {
        counts.subscribed = wouldConsent.n;
        plan.requests.subscribeJobs = Math.ceil(wouldConsent.n / LIMITS.subscribeProfiles);
      } else if (def.consent === 'unsubscribed') {
        counts.unsubscribed = wouldConsent.n;
        plan.requests.unsubscribeJobs = Math.ceil(wouldConsent.n / LIMITS.unsubscribeProfiles);
      }
    } else if (def.consent !== 'never_subscribed') {
      await applyConsent();
    }

    // 8. Removals: members on the list that the source no longer holds.
    if (dryRun) {
      counts.removed = state.countMembers() - matchedExisting;
      plan.requests.removeCalls = Math.ceil(counts.removed / LIMITS.removeProfiles);
    } else {
      await removeLeftMembers();
    }
  } catch (err) {
    reportProgress(true);
    const detail = err instanceof KlaviyoError ? err.detail : (err as Error)?.message ?? String(err);
    logError({ stage: 'run', detail });
    return { ...progress(), status: 'failed', error: detail };
  }
  reportProgress(true);
  return { ...progress(), status: partial ? 'partial' : 'success', plan: dryRun ? plan : undefined };

  function memberLabel(member: Record<string, unknown>) {
    for (const k of ['external_id', 'email', 'phone_number', 'anonymous_id', 'profile_id']) if (member[k]) return String(member[k]);
    return undefined;
  }

  async function applyConsent() {
    const subscribing = def.consent === 'subscribed';
    const size = subscribing ? LIMITS.subscribeProfiles : LIMITS.unsubscribeProfiles;
    for (;;) {
      const batch = state.pendingConsent(size);
      if (!batch.length) return;
      const reachable = batch.filter((m) => memberChannels(m, channels).length);
      const groups = subscribing && def.consentedAtField
        ? [reachable.filter((m) => m.consented_at), reachable.filter((m) => !m.consented_at)]
        : [reachable];
      for (const [i, group] of groups.entries()) {
        if (!group.length) continue;
        try {
          if (subscribing) await calls.subscribe(klaviyo, group, channels, listId!, !!def.consentedAtField && i === 0, signal);
          else await calls.unsubscribe(klaviyo, group, channels, listId!, signal);
          if (subscribing) counts.subscribed += group.length;
          else counts.unsubscribed += group.length;
        } catch (err) {
          if (!isFinal4xx(err)) throw err;
          partial = true;
          counts.failed += group.length;
          for (const m of group) logError({ stage: subscribing ? 'subscribe' : 'unsubscribe', member: m.member_key, detail: err.detail });
        }
      }
      // Settled either way: done, or logged as failed (a 4xx is not retried in a loop).
      state.clearConsent(batch.map((m) => m.member_key));
      reportProgress();
    }
  }

  async function removeLeftMembers() {
    const seenFailures = new Set<string>();
    for (;;) {
      const left = state.leftMembers(runId, LIMITS.removeProfiles + seenFailures.size).filter((m) => !seenFailures.has(m.member_key));
      if (!left.length) return;
      const ids = new Map<string, string[]>();
      await lookupIds(left, ids);
      const profileIds = [...new Set([...ids.values()].flat())];
      try {
        await calls.removeFromList(klaviyo, listId!, profileIds, signal);
        // Members Klaviyo has no profile for are not on the list either: they are just forgotten.
        counts.removed += ids.size;
        state.forgetMembers(left.map((m) => m.member_key));
      } catch (err) {
        if (!isFinal4xx(err)) throw err;
        partial = true;
        counts.failed += left.length;
        for (const m of left) {
          seenFailures.add(m.member_key);
          logError({ stage: 'remove', member: m.member_key, detail: err.detail });
        }
      }
      reportProgress();
    }
  }

  /** Klaviyo profile ids by identifier: external_id first, then email, then phone for the rest. */
  async function lookupIds(left: LeftMember[], out: Map<string, string[]>) {
    let rest = left;
    for (const field of ['external_id', 'email', 'phone_number'] as const) {
      const withField = rest.filter((m) => m[field]);
      if (!withField.length) continue;
      const found = await calls.lookupProfileIds(klaviyo, field, [...new Set(withField.map((m) => m[field]!))], signal);
      for (const m of withField) {
        const value = field === 'email' ? m[field]!.toLowerCase() : m[field]!;
        const hit = found.get(value);
        if (hit) out.set(m.member_key, hit);
      }
      rest = rest.filter((m) => !out.has(m.member_key));
    }
  }
}

export type { AudienceState };
