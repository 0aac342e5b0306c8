import { describe, expect, it } from 'vitest';
import { OpenApiSpec } from '../../src/emulator/openapi.js';
import { planBulkJobs, planProfileImports, singleEventRequest, profileFor, MAX_JOB_BYTES } from '../../src/server/forward-plan.js';
import type { OutboxItem } from '../../src/server/store/types.js';
import { wireEvent } from './helpers.js';

const spec = OpenApiSpec.load();
let nextId = 1;
function item(profileId: number | null, overrides: Parameters<typeof wireEvent>[0] = {}, known: OutboxItem['known'] = {}): OutboxItem {
  return { eventId: nextId++, attempts: 1, profileId, known, event: wireEvent(overrides) };
}

describe('bulk job planning', () => {
  it('caps jobs at 1,000 events, groups by profile, and every job validates against the spec', () => {
    const items = Array.from({ length: 2500 }, (_, i) => item(i % 7, { profile: { email: `p${i % 7}@example.com` } }));
    const jobs = planBulkJobs(items);
    expect(jobs.map((j) => j.items.length)).toEqual([1000, 1000, 500]);
    expect(jobs.flatMap((j) => j.items).length).toBe(2500);
    for (const job of jobs) {
      expect(spec.validateBody('bulk_create_events', job.body)).toEqual([]);
      const entries = (job.body as any).data.attributes['events-bulk-create'].data;
      expect(entries.length).toBeLessThanOrEqual(7);
      const emails = entries.map((e: any) => e.attributes.profile.data.attributes.email);
      expect(new Set(emails).size).toBe(entries.length); // one entry per profile
    }
  });

  it('splits by size under 5 MB', () => {
    const blob = 'x'.repeat(100_000);
    const items = Array.from({ length: 120 }, (_, i) => item(i, { properties: { blob } }));
    const jobs = planBulkJobs(items);
    expect(jobs.length).toBeGreaterThan(1);
    for (const job of jobs) expect(Buffer.byteLength(JSON.stringify(job.body))).toBeLessThanOrEqual(MAX_JOB_BYTES);
    expect(jobs.flatMap((j) => j.items).length).toBe(120);
  });

  it('never puts one unique_id twice in a job', () => {
    const first = item(1);
    const twin: OutboxItem = { ...item(1), event: { ...first.event } };
    const [job] = planBulkJobs([first, twin, item(1)]);
    const ids = (job!.body as any).data.attributes['events-bulk-create'].data.flatMap((e: any) => e.attributes.events.data.map((ev: any) => ev.attributes.unique_id));
    expect(ids.length).toBe(2);
    expect(new Set(ids).size).toBe(2);
    expect(job!.duplicates).toEqual([twin]);
  });
});

describe('single events and profile imports', () => {
  it('fills identifiers learned by stitching and validates for /api/events', () => {
    const it1 = item(3, { profile: { anonymous_id: 'anon-q' } }, { email: 'q@example.com' });
    expect(profileFor(it1)).toEqual({ anonymous_id: 'anon-q', email: 'q@example.com' });
    expect(spec.validateBody('create_event', singleEventRequest(it1).body)).toEqual([]);
  });

  it('coalesces identifies per profile, drops anonymous_id, and refuses an identify without a person identifier', () => {
    const a1 = item(5, { type: 'identify', name: undefined, profile: { anonymous_id: 'x', email: 'z@example.com', first_name: 'Zed' } });
    const a2 = item(5, { type: 'identify', name: undefined, profile: { anonymous_id: 'x', email: 'z@example.com', last_name: 'Zee' } });
    const anon = item(6, { type: 'identify', name: undefined, profile: { anonymous_id: 'only-anon' } });
    const { requests, unsendable } = planProfileImports([a1, a2, anon]);
    expect(requests).toHaveLength(1);
    expect(requests[0]!.items).toEqual([a1, a2]);
    expect((requests[0]!.body as any).data.attributes).toEqual({ email: 'z@example.com', first_name: 'Zed', last_name: 'Zee' });
    expect(spec.validateBody('create_or_update_profile', requests[0]!.body)).toEqual([]);
    expect(unsendable).toEqual([anon]);
  });
});
