// The zod twin of wire.ts: what the companion server accepts on POST /v1/events. Server only (zod stays out of
// the snippet). Unknown fields are stripped rather than rejected, so an older server accepts a newer snippet.
import { z } from 'zod';
import { routeSchema } from './workflow-schema.js';
import type { RelayEvent } from './wire.js';
import { propertiesLimitError, timeLimitError } from './ingestion-limits.js';
import { describeIssues } from './zod-issues.js';

export { describeIssues };

/** Klaviyo's limits: metric names up to 128 characters; a single string at most 100 KB. */
export const MAX_EVENT_NAME = 128;
export const MAX_EVENTS_PER_BATCH = 100;

const text = (max: number) => z.string().trim().min(1).max(max);
const properties = z.record(z.string(), z.unknown());

const locationSchema = z.object({
  address1: text(255).optional(),
  address2: text(255).optional(),
  city: text(255).optional(),
  country: text(255).optional(),
  region: text(255).optional(),
  zip: text(64).optional(),
  timezone: text(64).optional(),
  ip: text(64).optional(),
  latitude: z.union([z.number(), z.string()]).optional(),
  longitude: z.union([z.number(), z.string()]).optional(),
});

/** E.164 after removing spaces, dashes, dots and parentheses: Klaviyo rejects anything else. */
const phoneSchema = z
  .string()
  .transform((s) => s.replace(/[\s().-]/g, ''))
  .pipe(z.string().regex(/^\+[1-9]\d{6,14}$/, { error: 'must be an E.164 number such as "+15005550006"' }));

export const wireProfileSchema = z.object({
  anonymous_id: text(255).optional(),
  // The snippet's own check (src/browser/sanitize.ts), so the store never refuses what the browser accepted;
  // Klaviyo has the last word when the event is forwarded.
  email: z.string().trim().max(254).regex(/^[^\s@]+@[^\s@]+\.[^\s@]+$/, { error: 'must be a valid email address' }).optional(),
  phone_number: phoneSchema.optional(),
  external_id: text(255).optional(),
  _kx: text(1024).optional(),
  first_name: text(255).optional(),
  last_name: text(255).optional(),
  organization: text(255).optional(),
  title: text(255).optional(),
  locale: text(64).optional(),
  image: text(2048).optional(),
  location: locationSchema.optional(),
  properties: properties.optional(),
});

const IDENTIFIERS = ['anonymous_id', 'email', 'phone_number', 'external_id', '_kx'] as const;

export const wireEventSchema = z
  .object({
    type: z.enum(['track', 'identify']).default('track'),
    name: z.string().trim().min(1, { error: 'must not be empty' }).max(MAX_EVENT_NAME, { error: `must be at most ${MAX_EVENT_NAME} characters` }).optional(),
    properties: properties.optional(),
    time: z.iso.datetime({ offset: true, error: 'must be an ISO-8601 date-time such as "2026-11-28T10:00:00.000Z"' }),
    value: z.number().refine(Number.isFinite, { error: 'must be a finite number' }).optional(),
    value_currency: z.string().regex(/^[A-Za-z]{3}$/, { error: 'must be a 3-letter ISO 4217 code such as "USD"' }).optional(),
    unique_id: text(255),
    route: routeSchema,
    profile: wireProfileSchema,
  })
  .superRefine((ev, ctx) => {
    if (ev.type === 'track' && !ev.name) ctx.addIssue({ code: 'custom', path: ['name'], message: 'is required for a track event' });
    if (!IDENTIFIERS.some((k) => ev.profile[k])) {
      ctx.addIssue({ code: 'custom', path: ['profile'], message: `needs at least one identifier (${IDENTIFIERS.join(', ')})` });
    }
  });

/** A validated event: defaults applied, strings trimmed, phone normalised. */
export type ValidEvent = z.output<typeof wireEventSchema> & RelayEvent;

/** The envelope only; each event is validated on its own so one bad event does not sink the batch. */
export const eventsBatchEnvelopeSchema = z.object({
  public_key: z.string().min(1, { error: 'is required' }),
  events: z.array(z.unknown()),
});

/** Why Klaviyo would refuse this schema-valid event at ingestion, naming the field and the limit. */
function ingestionLimitError(ev: ValidEvent, now: number): string | undefined {
  // Only events carry a time to Klaviyo; an identify's time just orders it in the outbox.
  const time = ev.type === 'track' ? timeLimitError(ev.time, now) : undefined;
  if (time) return `time: ${time}`;
  const properties = propertiesLimitError(ev.properties);
  if (properties) return `properties: ${properties}`;
  const traits = propertiesLimitError(ev.profile.properties);
  if (traits) return `profile.properties: ${traits}`;
  return undefined;
}

/** One event: the wire schema, then Klaviyo's ingestion limits, so what is stored can also be forwarded. */
export function parseWireEvent(input: unknown, now = Date.now()): { ok: true; event: ValidEvent } | { ok: false; error: string } {
  const result = wireEventSchema.safeParse(input);
  if (!result.success) return { ok: false, error: describeIssues(result.error, '; ', 'event') };
  const event = result.data as ValidEvent;
  const limit = ingestionLimitError(event, now);
  return limit ? { ok: false, error: `${limit} (Klaviyo's ingestion limit)` } : { ok: true, event };
}
