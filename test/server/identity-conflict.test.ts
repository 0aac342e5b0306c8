// 409 duplicate_profile: an identify whose identifiers sit on two Klaviyo profiles. Klaviyo answers
// POST /api/profile-import — and PATCH /api/profiles/{id} too — with 409 and `errors[0].meta.duplicate_profile_id`
// (https://github.com/klaviyo/klaviyo-api-node/issues/75 and https://github.com/klaviyo/klaviyo-api-node/issues/74).
// The relay updates the profile Klaviyo names, without the identifiers that belong to the other one.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../src/emulator/index.js';
import type { RelayServer } from '../../src/server/index.js';
import { KLAVIYO_REVISION } from '../../src/shared/revision.js';
import { ADMIN_TOKEN, PRIVATE_KEY, batch, postEvents, startServer, wireEvent } from './helpers.js';
import { fakeClock } from '../support/fake-clock.js';

let emulator: Emulator;
let server: RelayServer;
let url: string;

beforeEach(async () => {
  emulator = await startEmulator({ port: 0, privateKey: PRIVATE_KEY, jobDelayMs: 20 });
  ({ server, url } = await startServer({}, { klaviyoBaseUrl: emulator.url }));
});
afterEach(async () => {
  await server?.close();
  await emulator.close();
});

/** A profile made in Klaviyo by someone else (another integration, a form), as its API would. */
async function existingProfile(attributes: Record<string, unknown>): Promise<string> {
  const res = await fetch(`${emulator.url}/api/profile-import`, {
    method: 'POST',
    headers: { Authorization: `Klaviyo-API-Key ${PRIVATE_KEY}`, revision: KLAVIYO_REVISION, 'content-type': 'application/vnd.api+json', accept: 'application/vnd.api+json' },
    body: JSON.stringify({ data: { type: 'profile', attributes } }),
  });
  expect(res.status).toBe(201);
  return (await res.json()).data.id;
}

const profile = (id: string) => emulator.state.profiles().find((p) => p.id === id) as Record<string, any>;
const calls = (operationId: string) => emulator.requests.filter((r) => r.operationId === operationId);
const identify = (p: Record<string, unknown>) => wireEvent({ type: 'identify', name: undefined, profile: { anonymous_id: 'anon-9', ...p } });

describe('identify meets 409 duplicate_profile', () => {
  it('updates the profile Klaviyo names with the traits and its own identifiers; the item ends sent with a note', async () => {
    const byEmail = await existingProfile({ email: 'grace@example.com' });
    const byPhone = await existingProfile({ phone_number: '+15005550006' });
    const ev = identify({ email: 'grace@example.com', phone_number: '+15005550006', first_name: 'Grace', properties: { plan: 'gold' } });
    await postEvents(url, batch([ev]));
    await server.forwarder.flush();

    expect(calls('create_or_update_profile').map((r) => r.status)).toEqual([201, 201, 409]);
    // The update went to a profile Klaviyo named, carrying only identifiers that profile already holds.
    const patches = calls('update_profile');
    expect(patches.at(-1)!.status).toBe(200);
    const applied = (patches.at(-1)!.body as any).data;
    expect([byEmail, byPhone]).toContain(applied.id);
    const updated = profile(applied.id);
    expect(updated.first_name).toBe('Grace');
    expect(updated.properties.plan).toBe('gold');
    const other = profile(applied.id === byEmail ? byPhone : byEmail);
    expect(other.first_name).toBeUndefined();
    // Identifiers never moved between the two profiles.
    expect(profile(byEmail).email).toBe('grace@example.com');
    expect(profile(byPhone).phone_number).toBe('+15005550006');
    expect(profile(byEmail).phone_number).toBeUndefined();
    expect(profile(byPhone).email).toBeUndefined();

    const [row] = await server.store.listOutbox({ status: 'sent' });
    expect(row).toMatchObject({ unique_id: ev.unique_id, status: 'sent', last_error: null });
    expect(row!.note).toMatch(new RegExp(`^Klaviyo 409 duplicate_profile: .+ another Klaviyo profile; updated profile ${applied.id} with the traits`));
    expect((await server.store.counts()).outbox.failed).toBe(0);
    expect(server.forwarder.stats().conflicts).toBe(1);

    const view = await (await fetch(`${url}/v1/admin/outbox?status=sent`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json();
    expect(view.items[0]).toMatchObject({ unique_id: ev.unique_id, note: expect.stringContaining('duplicate_profile') });
  });

  it('adds an identifier the named profile lacks when Klaviyo accepts it', async () => {
    const byEmail = await existingProfile({ email: 'ada@example.com' });
    await existingProfile({ external_id: 'C-7' });
    await postEvents(url, batch([identify({ email: 'ada@example.com', external_id: 'C-7', phone_number: '+15005550009', last_name: 'Lovelace' })]));
    await server.forwarder.flush();
    const [row] = await server.store.listOutbox({ status: 'sent' });
    expect(row!.note).toMatch(/duplicate_profile/);
    const patched = (calls('update_profile').filter((r) => r.status === 200).at(-1)!.body as any).data;
    const updated = profile(patched.id);
    expect(updated.last_name).toBe('Lovelace');
    // The free phone number joined the named profile; the identifier held by the other profile did not move.
    expect(updated.phone_number).toBe('+15005550009');
    expect(row!.note).toMatch(patched.id === byEmail ? /external_id belongs to another Klaviyo profile/ : /email belongs to another Klaviyo profile/);
  });

  // The lookup is its own Klaviyo operation (get_profiles, scope profiles:read): a 403 on it pauses only lookups
  // (https://developers.klaviyo.com/en/docs/authenticate_), and plain profile imports keep flowing.
  it('a refused lookup pauses profile lookups only; the conflicted identify waits for them, others are imported', async () => {
    await server.close();
    const clock = fakeClock();
    ({ server, url } = await startServer({}, { klaviyoBaseUrl: emulator.url, clock }));
    await existingProfile({ email: 'grace@example.com' });
    await existingProfile({ phone_number: '+15005550006' });
    emulator.faults.add({ method: 'GET', path: '/api/profiles', status: 403, count: 1 });
    const conflicted = identify({ email: 'grace@example.com', phone_number: '+15005550006', first_name: 'Grace' });
    await postEvents(url, batch([conflicted]));
    await server.forwarder.flush();
    // An injected fault answers before routing, so the log names no operationId: match the request instead.
    const lookups = () => emulator.requests.filter((r) => r.method === 'GET' && r.path === '/api/profiles').map((r) => r.status);
    expect(lookups()).toEqual([403]);
    expect(server.forwarder.stats().paused!.operations).toMatchObject([{ operationId: 'get_profiles', label: 'profile lookups', status: 403 }]);
    const [waiting] = await server.store.listOutbox({ status: 'pending' });
    expect(waiting).toMatchObject({ unique_id: conflicted.unique_id, next_attempt_at: clock.now() + 60_000, last_error: expect.stringMatching(/^profile lookups: Klaviyo 403: /) });

    // A plain identify is imported meanwhile (and does not end the lookups' pause).
    clock.advance(1_000);
    const plain = wireEvent({ type: 'identify', name: undefined, profile: { email: 'lin@example.com' } });
    await postEvents(url, batch([plain]));
    await server.forwarder.flush();
    expect(calls('create_or_update_profile').at(-1)!.status).toBe(201);
    expect(server.forwarder.forwarding()).toMatchObject({ state: 'paused', reason: expect.stringMatching(/^profile lookups: /) });

    clock.advance(59_000);
    await server.forwarder.flush();
    expect(lookups()).toEqual([403, 200]);
    expect(calls('update_profile').at(-1)!.status).toBe(200);
    expect(server.forwarder.stats().paused).toBeNull();
    expect((await server.store.counts()).outbox).toMatchObject({ sent: 2, pending: 0, failed: 0 });
  });
});
