// One audience sync run (docs/audience-sync.md): resolve the list, stream and map the members,
// diff them against what Klaviyo confirmed before, import the new and changed ones in job-sized chunks
// (import-jobs.ts), apply consent (consent.ts), remove members who left (removals.ts). The diff state only moves
// when Klaviyo confirmed a job, so a killed run resumes without re-importing. Dry runs stop before any write.
import * as crypto from 'node:crypto';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { AudienceStore, MemberState, SentMember } from '../store/audience-types.js';
import { KlaviyoError, type KlaviyoClient } from '../klaviyo-client.js';
import { consentSettings, type AudienceDefinition } from './definition.js';
import { createMapper, type ProfileAttributes, type SourceMember } from './mapping.js';
import { profileToMember, segmentMemberKey } from './segment.js';
import { streamFile, allowedSourcePath, type FileItem } from './file-source.js';
import { LIMITS, importProfileEntry, importEnvelopeBytes, memberChannels, type Channel } from './payloads.js';
import type { RunStatus } from './runs.js';
import { RunRecorder, type RunProgress } from './run-recorder.js';
import { createImporter, type ImporterOptions } from './import-jobs.js';
import { applyConsent, owesConsent } from './consent.js';
import { removeLeftMembers } from './removals.js';
import * as calls from './klaviyo-calls.js';

export type { RunProgress } from './run-recorder.js';

export interface RunOptions {
  store: AudienceStore;
  klaviyo: KlaviyoClient;
  definition: AudienceDefinition;
  configDir: string;
  /** Folders besides configDir that file sources may read (the config's audienceFileRoots). */
  fileRoots?: string[];
  defaultPhoneRegion?: string;
  /** Log row id; absent for dry runs, which write nothing. */
  runId?: number;
  dryRun?: boolean;
  signal?: AbortSignal;
  /** Import jobs kept in flight while the next chunk is built. Default 2. */
  maxInflightJobs?: number;
  /** First wait between polls of an import job (default 500 ms); grows to pollMaxMs. */
  pollIntervalMs?: number;
  pollMaxMs?: number;
  /** Profiles per import job; Klaviyo's limit (10,000) unless lower (tests). */
  maxProfilesPerJob?: number;
  /** Payloads kept as a sample in a dry run. */
  sampleSize?: number;
  /** Progress hook (log row updates). */
  onProgress?: (p: RunProgress) => Promise<void> | void;
  onEvent?: ImporterOptions['onEvent'];
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
/** A mapped, valid member waiting for its diff. */
type Mapped = { key: string; attributes: ProfileAttributes; consentedAt?: string; json: string; hash: string };

/** Hash of what Klaviyo was sent for a member (one-shot crypto.hash where Node has it: ≥ 20.12). */
const hashPayload: (listId: string, json: string) => string =
  typeof crypto.hash === 'function'
    ? (listId, json) => crypto.hash('sha1', `${listId}\n${json}`, 'base64url')
    : (listId, json) => crypto.createHash('sha1').update(`${listId}\n${json}`).digest('base64url');

/** Members diffed per state query. */
const DIFF_BATCH = 500;

/** The source as one async stream of members (or per-line errors). */
async function* sourceItems(opts: RunOptions): AsyncGenerator<FileItem> {
  const source = opts.definition.source;
  if (source.type === 'segment') {
    for await (const profile of opts.store.segment(source.rules, Date.now())) yield { member: profileToMember(profile) };
  } else {
    // Checked again at run time: a symlink may have been swapped since the definition was accepted.
    yield* streamFile(allowedSourcePath(source.path, { configDir: opts.configDir, fileRoots: opts.fileRoots }), source.format);
  }
}

/** A source whose first item was already read, from that item on. */
async function* fromFirst(first: IteratorResult<FileItem>, rest: AsyncGenerator<FileItem>): AsyncGenerator<FileItem> {
  if (first.done) return;
  yield first.value;
  for (let next = await rest.next(); !next.done; next = await rest.next()) yield next.value;
}

function memberLabel(member: Record<string, unknown>) {
  for (const k of ['external_id', 'email', 'phone_number', 'anonymous_id', 'profile_id']) if (member[k]) return String(member[k]);
  return undefined;
}

/** The next import job being filled, within Klaviyo's per-job profile count and payload size. */
class Chunk {
  entries: Entry[] = [];
  members: SentMember[] = [];
  /** Keys still in the source whose send failed before a job (their old state stays). */
  stale: string[] = [];
  private readonly index = new Map<string, number>();
  private bytes: number;

  constructor(envelopeBytes: number, private readonly maxProfiles: number) {
    this.bytes = envelopeBytes;
  }

  fits(entryBytes: number) {
    return this.entries.length < this.maxProfiles && this.bytes + entryBytes <= LIMITS.importBytes;
  }

  /** Add a member; the same member twice in one source: the later row wins, one profile is sent. */
  add(entry: Entry, member: SentMember, entryBytes: number) {
    const at = this.index.get(member.key);
    if (at !== undefined) {
      this.entries[at] = entry;
      this.members[at] = member;
      return;
    }
    this.index.set(member.key, this.entries.length);
    this.entries.push(entry);
    this.members.push(member);
    this.bytes += entryBytes;
  }

  has(key: string) {
    return this.index.has(key);
  }
}

export async function executeRun(opts: RunOptions): Promise<RunResult> {
  const { definition: def, klaviyo, signal } = opts;
  const dryRun = !!opts.dryRun;
  const runId = opts.runId ?? 0;
  const state = opts.store.members(def.name);
  const rec = new RunRecorder(opts.onProgress);
  const plan: DryRunPlan = { list: {}, requests: { importJobs: 0, subscribeJobs: 0, unsubscribeJobs: 0, removeCalls: 0 }, sample: { importProfiles: [] } };
  const channels = def.subscription as Channel[];
  const jobSize = Math.min(opts.maxProfilesPerJob ?? LIMITS.importProfiles, LIMITS.importProfiles);
  const counts = rec.counts;

  const source = sourceItems(opts);
  try {
    // The source is opened and its first item read before anything reaches Klaviyo: a file that is missing,
    // outside the allowed folders, or unreadable from its header fails the run before a list is created.
    const first = await source.next();

    // 1. Resolve or create the list.
    const listSpec = JSON.stringify(def.list);
    const list = await calls.resolveList(klaviyo, def.list, { dryRun, remembered: await state.rememberedList(listSpec), signal });
    plan.list = list;
    rec.listId = list.id;
    const listId = list.id ?? '';
    if (!dryRun) await state.rememberList(listSpec, listId);
    rec.report(true);
    // Changed consent settings re-apply consent to every current member (a first run has nothing to re-apply).
    const settings = consentSettings(def);
    const appliedSettings = await state.consentSettings();
    const settingsChanged = appliedSettings !== undefined && appliedSettings !== settings && def.consent !== 'never_subscribed';

    const scope = { klaviyo, state, rec, listId, runId, signal };
    const importer = createImporter({
      ...scope, maxInflight: opts.maxInflightJobs ?? 2, pollIntervalMs: opts.pollIntervalMs, pollMaxMs: opts.pollMaxMs, onEvent: opts.onEvent,
    });
    if (!dryRun) await importer.resume();

    // 2–6. Stream, map, validate, diff, import in chunks.
    const mapMember = createMapper(def, {
      defaultPhoneRegion: opts.defaultPhoneRegion,
      sourceKey: def.source.type === 'segment' ? segmentMemberKey : undefined,
    });
    const envelope = importEnvelopeBytes(listId || 'XXXXXX');
    let chunk = new Chunk(envelope, jobSize);
    let matchedExisting = 0;
    let owingConsent = 0;

    const send = async (full: Chunk) => {
      if (!full.entries.length) return;
      if (!dryRun) return importer.submit(full.entries, full.members, full.stale);
      plan.requests.importJobs++;
      counts.imported += full.entries.length;
      plan.sample.importProfiles.push(...full.entries.slice(0, Math.max(0, (opts.sampleSize ?? 5) - plan.sample.importProfiles.length)));
    };

    /** Queue one new or changed member into the current chunk, sending the chunk when it is full. */
    const queue = async (m: Mapped, before: MemberState | undefined) => {
      const entryBytes = Buffer.byteLength(m.json) + 40; // {"type":"profile","attributes":…},
      if (entryBytes > LIMITS.importProfileBytes) {
        rec.failed(1);
        rec.error({ stage: 'import', member: m.key, detail: `profile is ${entryBytes} bytes; Klaviyo accepts at most ${LIMITS.importProfileBytes} per profile` });
        if (before) chunk.stale.push(m.key);
        return;
      }
      const a = m.attributes;
      const consent = owesConsent(def, before, a, settingsChanged);
      if (consent && memberChannels(a, channels).length) owingConsent++;
      const sent: SentMember = { key: m.key, hash: m.hash, email: a.email, phone_number: a.phone_number, external_id: a.external_id, consented_at: m.consentedAt, consent };
      if (!chunk.has(m.key) && !chunk.fits(entryBytes)) {
        await send(chunk);
        chunk = new Chunk(envelope, jobSize);
      }
      chunk.add(importProfileEntry(a), sent, entryBytes);
    };

    /** Diff a batch against the confirmed state with one query; unchanged members are marked as seen. */
    const diffBatch = async (items: Mapped[]) => {
      if (!items.length) return;
      const known = await state.getMany(items.map((m) => m.key));
      const unchanged: string[] = [];
      for (const m of items) {
        const before = known.get(m.key);
        if (before && before.left_at === null) matchedExisting++;
        // A member who left and came back is sent again (to rejoin the list), whatever its hash; so is one a
        // list-level unsubscribe took off the list when new consent settings must reach them on it.
        const onList = before && before.left_at === null && !(settingsChanged && before.list_unsubscribed);
        if (onList && before.hash === m.hash) {
          unchanged.push(m.key);
          // Imported by this run when it confirmed the killed run's job: counted as imported, once.
          if (!dryRun && importer.confirmedOnResume(m.key)) counts.imported++;
          else counts.unchanged++;
          if (settingsChanged && memberChannels(m.attributes, channels).length) owingConsent++;
        } else await queue(m, before);
      }
      if (!dryRun) await state.touchMany(unchanged, runId, settingsChanged);
      rec.report();
      // A source read without I/O (a segment, an unchanged file) must not hold the event loop for the whole
      // run: intake and the admin API answer between batches.
      await yieldToEventLoop();
    };

    let batch: Mapped[] = [];
    for await (const item of fromFirst(first, source)) {
      if (signal?.aborted) throw signal.reason;
      if ('error' in item) {
        counts.invalid++;
        rec.error({ stage: 'source', detail: item.error });
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
        rec.error({ stage: 'validate', member: memberLabel(item.member), detail: outcome.reason });
        continue;
      }
      if (outcome.droppedFields.length) {
        counts.invalid_fields += outcome.droppedFields.length;
        rec.error({ stage: 'validate', member: outcome.key, detail: `invalid ${outcome.droppedFields.join(' and ')} dropped` });
      }
      const json = JSON.stringify(outcome.attributes);
      batch.push({ key: outcome.key, attributes: outcome.attributes, consentedAt: outcome.consentedAt, json, hash: hashPayload(listId, json) });
      if (batch.length >= DIFF_BATCH) {
        await diffBatch(batch);
        batch = [];
      }
    }
    await diffBatch(batch);
    await send(chunk);

    if (dryRun) {
      // What steps 7 and 8 would do, from the diff alone (no lookups, no writes).
      if (def.consent === 'subscribed') counts.subscribed = owingConsent;
      if (def.consent === 'unsubscribed') counts.unsubscribed = owingConsent;
      plan.requests.subscribeJobs = Math.ceil(counts.subscribed / LIMITS.subscribeProfiles);
      plan.requests.unsubscribeJobs = Math.ceil(counts.unsubscribed / LIMITS.unsubscribeProfiles);
      counts.removed = (await state.countMembers()) - matchedExisting;
      plan.requests.removeCalls = Math.ceil(counts.removed / LIMITS.removeProfiles);
    } else {
      await importer.drain();
      // Every current member now owes consent under these settings (or got it with its import).
      await state.rememberConsentSettings(settings);
      // 7. Consent. 8. Removals.
      await applyConsent({ ...scope, def });
      await removeLeftMembers(scope);
    }
  } catch (err) {
    const detail = err instanceof KlaviyoError ? err.detail : ((err as Error)?.message ?? String(err));
    rec.error({ stage: 'run', detail });
    rec.report(true);
    return { ...rec.progress(), status: 'failed', error: detail };
  } finally {
    await source.return(undefined); // a run that failed midway gives a segment cursor's connection back
  }
  rec.report(true);
  return { ...rec.progress(), status: rec.partial ? 'partial' : 'success', plan: dryRun ? plan : undefined };
}
