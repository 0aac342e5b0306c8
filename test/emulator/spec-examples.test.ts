import { describe, expect, it } from 'vitest';
import { OpenApiSpec } from '../../src/emulator/openapi.js';
import { requestExamples } from './spec-examples.js';

// The sandbox's validator rejects unknown fields (as Klaviyo does); `asPublished` is the spec's schemas exactly.
const spec = OpenApiSpec.load();
const asPublished = OpenApiSpec.load(undefined, { allowUnknownFields: true });
const examples = requestExamples(spec);

/** Every operation the project sends, so every one of their examples must pass outright. */
const USED = [
  'create_client_event', 'create_client_profile', 'create_client_subscription', 'bulk_create_client_events', 'create_event', 'bulk_create_events',
  'create_or_update_profile', 'create_list', 'add_profiles_to_list', 'remove_profiles_from_list', 'bulk_import_profiles', 'bulk_subscribe_profiles',
  'bulk_unsubscribe_profiles',
];

describe("the spec's own example bodies pass the validator (it is not stricter than Klaviyo)", () => {
  it('assembles examples for every operation with a body, the used ones included', () => {
    expect(examples.length).toBeGreaterThan(100);
    for (const id of USED) expect(examples.some((e) => e.operationId === id), id).toBe(true);
  });

  it.each(examples.filter((e) => USED.includes(e.operationId)).map((e) => [`${e.operationId} (${e.mode})`, e] as const))('%s passes', (_name, e) => {
    expect(spec.validateBody(e.operationId, e.body)).toEqual([]);
  });

  // For the rest, some assembled examples contradict the published schema itself (ambiguous oneOf); whatever the
  // published schema accepts, the sandbox must accept too.
  it.each(examples.map((e) => [`${e.operationId} (${e.mode})`, e] as const))('%s: accepted whenever the published schema accepts it', (_name, e) => {
    if (asPublished.validateBody(e.operationId, e.body).length) return;
    expect(spec.validateBody(e.operationId, e.body)).toEqual([]);
  });

  it('still rejects a field that neither the schema nor an example declares', () => {
    const body = { data: { type: 'profile', attributes: { email: 'a@b.co', favourite_colour: 'red' } } };
    expect(spec.validateBody('create_client_profile', body)).toMatchObject([{ pointer: '/data/attributes/favourite_colour' }]);
    expect(asPublished.validateBody('create_client_profile', body)).toEqual([]);
  });
});

describe("the spec's examples for the endpoints we use are accepted end to end over HTTP", async () => {
  const { start, call } = await import('./helpers.js');
  const { afterAll, beforeAll } = await import('vitest');
  let em: Awaited<ReturnType<typeof start>>;
  beforeAll(async () => {
    em = await start({ rateLimits: false, spec });
  });
  afterAll(() => em.close());

  /** Points profile/list references at real records, as a caller's would be. */
  function withRealIds(body: unknown, profileId: string, listId: string): unknown {
    if (Array.isArray(body)) return body.map((b) => withRealIds(b, profileId, listId));
    if (!body || typeof body !== 'object') return body;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(body)) out[k] = withRealIds(v, profileId, listId);
    if (out.type === 'profile' && typeof out.id === 'string') out.id = profileId;
    if (out.type === 'list' && typeof out.id === 'string') out.id = listId;
    return out;
  }

  // Full examples only: a required-fields-only profile has no identifier, which Klaviyo refuses beyond the schema.
  it.each(examples.filter((e) => USED.includes(e.operationId) && e.mode === 'full').map((e) => [e.operationId, e] as const))('%s', async (_name, e) => {
    em.reset();
    const profile = (await call(em, 'POST', '/api/profile-import', { body: { data: { type: 'profile', attributes: { email: 'sarah.mason@klaviyo-demo.com', phone_number: '+15005550006' } } } })).json.data;
    const list = (await call(em, 'POST', '/api/lists', { body: { data: { type: 'list', attributes: { name: 'Examples' } } } })).json.data;
    const op = spec.operation(e.operationId);
    const res = await call(em, op.method, op.path.replace('{id}', list.id), { body: withRealIds(e.body, profile.id, list.id) });
    expect(res.json?.errors ?? [], JSON.stringify(res.json)).toEqual([]);
    expect(res.status).toBeLessThan(300);
  });
});
