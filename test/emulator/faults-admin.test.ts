import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Emulator } from '../../src/emulator/index.js';
import { call, clientEvent, start } from './helpers.js';
import { waitFor } from '../support/wait-for.js';

let em: Emulator;
beforeAll(async () => {
  em = await start();
});
afterAll(() => em.close());
beforeEach(() => em.reset());

const ev = () => clientEvent('Viewed Product', { email: 'a@b.co' }, { unique_id: String(Math.random()) });

describe('fault injection', () => {
  it('answers the next N matching requests with the given status, then recovers', async () => {
    em.faults.add({ path: '/client/events', status: 503, count: 2 });
    expect((await call(em, 'POST', '/client/events', { body: ev() })).status).toBe(503);
    const second = await call(em, 'POST', '/client/events', { body: ev() });
    expect(second.status).toBe(503);
    expect(second.json.errors[0]).toMatchObject({ status: 503 });
    expect((await call(em, 'POST', '/client/events', { body: ev() })).status).toBe(202);
    expect(em.state.events()).toHaveLength(1);
  });

  it('injects 429 with Retry-After, readable cross-origin', async () => {
    em.faults.add({ path: '/client/', status: 429, retryAfter: 7, count: 1 });
    const res = await call(em, 'POST', '/client/events', { body: ev() });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('7');
    expect(res.headers.get('access-control-expose-headers')).toContain('Retry-After');
  });

  it('only matches its method and path prefix', async () => {
    em.faults.add({ method: 'post', path: '/api/', status: 500 });
    expect((await call(em, 'POST', '/client/events', { body: ev() })).status).toBe(202);
  });

  it('adds latency', async () => {
    // Observed by order, not by a stopwatch: a request sent later, without the fault, is answered first.
    em.faults.add({ path: '/client/events', latencyMs: 1_000, count: 1 });
    let slowAnswered = false;
    const slow = call(em, 'POST', '/client/events', { body: ev() }).then((res) => ((slowAnswered = true), res));
    await waitFor(() => em.faults.list().length === 0, { what: 'the latency rule to be picked' });
    expect((await call(em, 'POST', '/client/events', { body: ev() })).status).toBe(202);
    expect(slowAnswered).toBe(false);
    expect((await slow).status).toBe(202);
  });

  it('drops the connection', async () => {
    em.faults.add({ path: '/client/events', drop: true, count: 1 });
    await expect(call(em, 'POST', '/client/events', { body: ev() })).rejects.toThrow();
    expect((await call(em, 'POST', '/client/events', { body: ev() })).status).toBe(202);
  });

  it('applies a rule to a share of requests (ratio)', async () => {
    em.faults.add({ path: '/client/events', status: 500, ratio: 0.5 });
    const statuses = [];
    for (let i = 0; i < 60; i++) statuses.push((await call(em, 'POST', '/client/events', { body: ev() })).status);
    const failed = statuses.filter((s) => s === 500).length;
    expect(failed).toBeGreaterThan(10);
    expect(failed).toBeLessThan(50);
  });

  it('refuses a malformed rule', () => {
    expect(() => em.faults.add({ status: 99 })).toThrow(/status/);
    expect(() => em.faults.add({ path: '/x' })).toThrow(/needs/);
  });
});

describe('admin API', () => {
  it('adds and clears faults over HTTP with CORS', async () => {
    const add = await fetch(`${em.url}/__admin/faults`, { method: 'POST', body: JSON.stringify({ path: '/client/events', status: 500, count: 1 }) });
    expect(add.status).toBe(201);
    expect(add.headers.get('access-control-allow-origin')).toBe('*');
    expect((await call(em, 'POST', '/client/events', { body: ev() })).status).toBe(500);
    await fetch(`${em.url}/__admin/faults`, { method: 'POST', body: JSON.stringify({ path: '/client/events', status: 500 }) });
    expect((await fetch(`${em.url}/__admin/faults`, { method: 'DELETE' })).status).toBe(200);
    expect((await call(em, 'POST', '/client/events', { body: ev() })).status).toBe(202);
    const bad = await fetch(`${em.url}/__admin/faults`, { method: 'POST', body: JSON.stringify({ ratio: 3, status: 500 }) });
    expect(bad.status).toBe(400);
  });

  it('shows metrics with counts and latest events, and rejected requests with why', async () => {
    await call(em, 'POST', '/client/events', { body: ev() });
    await call(em, 'POST', '/client/events', { body: ev(), headers: { revision: undefined } });
    const state = await (await fetch(`${em.url}/__admin/state`)).json();
    expect(state.metrics[0]).toMatchObject({ name: 'Viewed Product', count: 1 });
    expect(state.metrics[0].latest[0].properties).toEqual({ sku: 'HAT-1' });
    expect(state.profiles[0].email).toBe('a@b.co');
    const { requests } = await (await fetch(`${em.url}/__admin/requests?rejected=1`)).json();
    expect(requests).toHaveLength(1);
    expect(requests[0]).toMatchObject({ status: 400, path: '/client/events' });
    expect(requests[0].error).toContain('revision');
    expect(requests[0].body.data.type).toBe('event');
  });

  it('resets everything', async () => {
    await call(em, 'POST', '/client/events', { body: ev() });
    expect((await fetch(`${em.url}/__admin/reset`, { method: 'POST' })).status).toBe(200);
    expect(em.state.events()).toHaveLength(0);
    expect(em.requests).toHaveLength(0);
  });

  it('serves the QA page with metrics, lists and rejections', async () => {
    await call(em, 'POST', '/client/events', { body: ev() });
    await call(em, 'POST', '/client/events', { body: ev(), query: { company_id: 'WRONG1' } });
    em.internals.state.lists.create('Newsletter <test>');
    const html = await (await fetch(`${em.url}/`)).text();
    expect(html).toContain('Viewed Product');
    expect(html).toContain('Newsletter &lt;test&gt;');
    expect(html).toContain('company_id');
  });
});

describe('rate limits', () => {
  it('answers 429 with Retry-After past the published burst (event-bulk-create: 10/s)', async () => {
    const body = (i: number) => ({ data: { type: 'event-bulk-create', attributes: { profile: { data: { type: 'profile', attributes: { anonymous_id: `a${i}` } } }, events: { data: [{ type: 'event', attributes: { properties: {}, metric: { data: { type: 'metric', attributes: { name: 'X' } } } } }] } } } });
    // A frozen clock keeps all 16 in one burst window: 10 pass, the rest are throttled.
    const frozen = await start({ clock: () => Date.UTC(2026, 10, 28, 10, 0, 0, 200) });
    const responses = await Promise.all(Array.from({ length: 16 }, (_, i) => call(frozen, 'POST', '/client/event-bulk-create', { body: body(i) }))).finally(() => frozen.close());
    const throttled = responses.filter((r) => r.status === 429);
    expect(responses.filter((r) => r.status === 202).length).toBe(10);
    expect(throttled.length).toBe(6);
    expect(throttled[0].json.errors[0].code).toBe('throttled');
    expect(throttled[0].headers.get('access-control-expose-headers')).toContain('Retry-After');
    const retryAfter = throttled[0].headers.get('retry-after');
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
  });
});
