// The plain-code validator the snippet ships (workflow.ts) and the server's zod twin (workflow-schema.ts) must agree:
// both run on the SAME case table. A divergence would let the server accept a config the browser rejects.
import { describe, it, expect } from 'vitest';
import { parseWorkflow, routeFor } from '../../src/shared/workflow.js';
import { workflowSchema } from '../../src/shared/workflow-schema.js';

type Case = [label: string, input: unknown, expected: Record<string, string> | { error: RegExp }];

const cases: Case[] = [
  ['empty config', {}, {}],
  ['string modes', { default: 'off', events: { A: 'client', B: 'server', C: 'off' } }, { A: 'client', B: 'server', C: 'off' }],
  ['object toggles', { events: { A: { client: true, server: false }, B: { client: false, server: true }, C: { client: false, server: false } } }, { A: 'client', B: 'server', C: 'off' }],
  ['both ways', { events: { Ok: 'client', 'Placed Order': { client: true, server: true } } }, { error: /Placed Order/ }],
  ['unknown mode', { events: { 'Viewed Product': 'browser' } }, { error: /Viewed Product/ }],
  ['toggle with a non-boolean', { events: { Checkout: { client: 'yes', server: false } } }, { error: /Checkout/ }],
  ['toggle with an extra key', { events: { Extra: { client: true, server: false, both: 1 } } }, { error: /Extra/ }],
  ['null toggle', { events: { Nil: null } }, { error: /Nil/ }],
  ['bad default', { default: 'everywhere' }, { error: /default|everywhere/ }],
  ['unknown top-level field', { default: 'client', event: {} }, { error: /event/ }],
  ['not an object', 'client', { error: /.+/ }],
  ['events is an array', { events: ['client'] }, { error: /.+/ }],
];

describe.each(cases)('workflow config: %s', (_label, input, expected) => {
  it('parseWorkflow (browser)', () => {
    const r = parseWorkflow(input);
    if ('error' in expected) {
      expect(r).toBeTypeOf('string');
      expect(r).toMatch(expected.error);
    } else {
      expect(typeof r != 'string' && r.events).toEqual(expected);
    }
  });
  it('workflowSchema (server, zod)', () => {
    const r = workflowSchema.safeParse(input);
    if ('error' in expected) {
      expect(r.success).toBe(false);
      // zod names the entry in the issue path; the message must carry it once formatted like the server does
      const named = r.error!.issues.map((i) => [...i.path, i.message].join(' ')).join('; ');
      expect(named).toMatch(expected.error);
    } else {
      expect(r.success && r.data.events).toEqual(expected);
    }
  });
});

describe('routeFor', () => {
  const parsed = parseWorkflow({ events: { A: 'client', B: { client: false, server: true }, C: 'off' } });
  const wf = typeof parsed == 'string' ? { events: {} } : parsed;
  it('uses the event toggle first', () => {
    expect(routeFor(wf, 'A', true)).toBe('client');
    expect(routeFor(wf, 'B', false)).toBe('server');
    expect(routeFor(wf, 'C', true)).toBe('off');
  });
  it('falls back to the default, then client without an endpoint and server with one', () => {
    expect(routeFor({ default: 'off', events: {} }, 'X', true)).toBe('off');
    expect(routeFor(wf, 'X', false)).toBe('client');
    expect(routeFor(wf, 'X', true)).toBe('server');
  });
});
