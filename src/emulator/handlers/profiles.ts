// Profiles: /client/profiles, /api/profile-import, GET /api/profiles and the bulk import jobs.
import { Buffer } from 'node:buffer';
import { ApiError, invalid, notFound } from '../errors.js';
import { matches } from '../filter.js';
import type { ImportError } from '../state/jobs.js';
import { hasIdentifier, identityProblems, normalizeIdentity, type Profile } from '../state/profiles.js';
import { defaultPageSize } from '../query.js';
import type { EmulatorState } from '../state/index.js';
import { accepted, limit, paginate, requireIdentity, type Handler, type HandlerContext, type HandlerRequest } from './context.js';
import { importJobResource, profileResource } from './resources.js';

export const MAX_PROFILES_PER_IMPORT = 10_000;
export const MAX_PROFILE_BYTES = 100 * 1024;
export const MAX_PAYLOAD_BYTES = 5 * 1024 * 1024;

const wantsSubscriptions = (req: HandlerRequest) => (req.query.raw.get('additional-fields[profile]') ?? '').split(',').includes('subscriptions');

/** profileResource's `subscriptions` option: the account's lists when the request asked for subscriptions. */
export const subscriptionsOption = (req: HandlerRequest, state: EmulatorState) => wantsSubscriptions(req) && { lists: state.lists.all() };

/** Reads a profile field for filtering; emails compare case-insensitively. */
/** Klaviyo's 100 KB ceiling for one profile (profile-import and PATCH payloads, each bulk import entry). */
function checkProfileSize(value: unknown, pointer: string, what: string): void {
  const bytes = Buffer.byteLength(JSON.stringify(value));
  if (bytes > MAX_PROFILE_BYTES) throw invalid(`${what} is ${bytes} bytes; at most ${MAX_PROFILE_BYTES} bytes (100 KB) per profile.`, { pointer });
}

export function profileField(p: Profile, field: string): unknown {
  if (field === 'id') return p.id;
  if (field === 'created' || field === 'updated') return p[field];
  if (field === 'email' || field === 'phone_number' || field === 'external_id') return p[field];
  return undefined;
}

export function lowerEmailConditions(req: HandlerRequest) {
  for (const c of req.query.filter) {
    if (c.field !== 'email') continue;
    c.value = Array.isArray(c.value) ? c.value.map((v) => (typeof v === 'string' ? v.toLowerCase() : v)) : typeof c.value === 'string' ? c.value.toLowerCase() : c.value;
  }
  return req.query.filter;
}

export function profileHandlers(ctx: HandlerContext): Record<string, Handler> {
  const { state, spec } = ctx;

  /** One import entry → an import error, or undefined after writing it. */
  const importOne = (entry: any, index: number, listIds: string[]): ImportError | undefined => {
    const pointer = `/data/attributes/profiles/data/${index}`;
    const fail = (code: string, detail: string, at: string): ImportError => ({ id: `${index}`, code, title: 'Invalid profile.', detail, source: { pointer: at }, original_payload: entry });
    const identity = normalizeIdentity(entry.attributes ?? {}, entry.id);
    if (!hasIdentifier(identity)) return fail('invalid', 'A profile needs at least one identifier: email, phone_number, external_id or id.', `${pointer}/attributes`);
    const problems = identityProblems(identity);
    if (problems.length) return fail('invalid', problems[0][1], `${pointer}/attributes/${problems[0][0]}`);
    try {
      const { profile } = state.profiles.upsert(identity, { attributes: entry.attributes, meta: entry.meta }, 'import');
      for (const id of listIds) {
        const list = state.lists.get(id);
        if (list) state.lists.addMember(list, profile.id);
      }
      return undefined;
    } catch (err) {
      if (err instanceof ApiError) return fail(err.errors[0].code, err.errors[0].detail, `${pointer}${err.errors[0].source?.pointer?.replace(/^\/data/, '') ?? ''}`);
      throw err;
    }
  };

  return {
    create_client_profile: (req) => {
      const data = req.body.data;
      const identity = requireIdentity(data.attributes, data.id, '/data/attributes', state);
      state.profiles.upsert(identity, { attributes: data.attributes, meta: data.meta }, 'client');
      return accepted();
    },

    create_or_update_profile: (req) => {
      const data = req.body.data;
      checkProfileSize(req.body, '/data', 'The profile');
      const identity = requireIdentity(data.attributes, data.id, '/data/attributes');
      const { profile, created } = state.profiles.upsert(identity, { attributes: data.attributes, meta: data.meta }, 'import');
      return { status: created ? 201 : 200, body: { data: profileResource(profile, req.baseUrl, { subscriptions: subscriptionsOption(req, state) }), links: { self: `${req.baseUrl}/api/profiles/${profile.id}` } } };
    },

    update_profile: (req) => {
      const data = req.body.data;
      if (data.id !== req.params.id) throw new ApiError(409, 'conflict', `The id in the body ('${data.id}') does not match the id in the URL ('${req.params.id}').`, { pointer: '/data/id' });
      const profile = state.profiles.get(req.params.id);
      if (!profile) throw notFound(`A profile with id '${req.params.id}' does not exist.`);
      const attrs = data.attributes ?? {};
      checkProfileSize(req.body, '/data', 'The profile');
      const problems = identityProblems(normalizeIdentity(attrs));
      if (problems.length) throw invalid(problems[0][1], { pointer: `/data/attributes/${problems[0][0]}` });
      state.profiles.patch(profile, attrs, data.meta ?? undefined);
      return { status: 200, body: { data: profileResource(profile, req.baseUrl, { subscriptions: subscriptionsOption(req, state) }), links: { self: `${req.baseUrl}/api/profiles/${profile.id}` } } };
    },

    get_profiles: (req) => {
      const conditions = lowerEmailConditions(req);
      let profiles = state.profiles.all().filter((p) => matches(conditions, (f) => profileField(p, f)));
      const sort = req.query.sort;
      if (sort) {
        const key = sort.replace(/^-/, '');
        const dir = sort.startsWith('-') ? -1 : 1;
        profiles = profiles.sort((a, b) => String(profileField(a, key) ?? '').localeCompare(String(profileField(b, key) ?? '')) * dir);
      }
      const { page, links } = paginate(profiles, req, req.query.pageSize ?? defaultPageSize(spec, req.operation));
      return { status: 200, body: { data: page.map((p) => profileResource(p, req.baseUrl, { subscriptions: subscriptionsOption(req, state) })), links } };
    },

    bulk_import_profiles: (req) => {
      const data = req.body.data;
      const entries: any[] = data.attributes.profiles.data;
      const base = '/data/attributes/profiles/data';
      limit(entries, MAX_PROFILES_PER_IMPORT, base, 'profiles');
      entries.forEach((e, i) => checkProfileSize(e, `${base}/${i}`, `Profile ${i}`));
      const listIds: string[] = (data.relationships?.lists?.data ?? []).map((l: any, i: number) => state.lists.require(l.id, `/data/relationships/lists/data/${i}/id`).id);
      const job = state.jobs.submit('profile-bulk-import-job', entries.length, listIds, () => {
        const errors = entries.map((e, i) => importOne(e, i, listIds)).filter((e): e is ImportError => !!e);
        return { completed: entries.length - errors.length, errors };
      });
      return { status: 202, body: { data: importJobResource(job, req.baseUrl), links: { self: `${req.baseUrl}/api/profile-bulk-import-jobs/${job.id}` } } };
    },

    get_bulk_import_profiles_job: (req) => {
      const job = state.jobs.get(req.params.job_id);
      if (!job || job.type !== 'profile-bulk-import-job') throw notFound(`A profile bulk import job with id '${req.params.job_id}' does not exist.`);
      return { status: 200, body: { data: importJobResource(job, req.baseUrl), links: { self: `${req.baseUrl}/api/profile-bulk-import-jobs/${job.id}` } } };
    },

    get_errors_for_bulk_import_profiles_job: (req) => {
      const job = state.jobs.get(req.params.id);
      if (!job || job.type !== 'profile-bulk-import-job') throw notFound(`A profile bulk import job with id '${req.params.id}' does not exist.`);
      const { page, links } = paginate(job.errors, req, req.query.pageSize ?? defaultPageSize(spec, req.operation));
      return {
        status: 200,
        body: { data: page.map(({ id, ...attributes }) => ({ type: 'import-error', id: `${job.id}-${id}`, attributes })), links },
      };
    },
  };
}
