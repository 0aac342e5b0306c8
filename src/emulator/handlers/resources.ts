// JSON:API resource objects as Klaviyo returns them.
import type { Job } from '../state/jobs.js';
import type { List } from '../state/lists.js';
import type { Profile } from '../state/profiles.js';

/**
 * A profile as Klaviyo returns it. `subscriptions` (asked for with additional-fields[profile]=subscriptions) carries
 * the account's lists, so list-level unsubscribes show as the email channel's `list_suppressions`.
 */
export function profileResource(p: Profile, baseUrl: string, opts: { subscriptions?: { lists: List[] } | false; joinedAt?: string } = {}) {
  const attributes: Record<string, unknown> = {
    email: p.email ?? null,
    phone_number: p.phone_number ?? null,
    external_id: p.external_id ?? null,
    first_name: null,
    last_name: null,
    organization: null,
    locale: null,
    title: null,
    image: null,
    ...p.attributes,
    created: p.created,
    updated: p.updated,
    last_event_date: null,
    location: p.attributes.location ?? {},
    properties: p.properties,
  };
  if (opts.joinedAt) attributes.joined_group_at = opts.joinedAt;
  if (opts.subscriptions) {
    attributes.subscriptions = {
      // Email marketing is implicit: anyone not suppressed (unsubscribed) can receive it, NEVER_SUBSCRIBED included.
      // SMS needs an explicit subscription.
      email: { marketing: { can_receive_email_marketing: p.subscriptions.email.marketing.consent !== 'UNSUBSCRIBED', ...consentView(p.subscriptions.email.marketing), suppression: emailSuppression(p.subscriptions.email.marketing), list_suppressions: listSuppressions(p, opts.subscriptions.lists) } },
      sms: { marketing: { can_receive_sms_marketing: p.subscriptions.sms.marketing.consent === 'SUBSCRIBED', ...consentView(p.subscriptions.sms.marketing) } },
    };
  }
  return {
    type: 'profile',
    id: p.id,
    attributes,
    relationships: {
      lists: { links: { self: `${baseUrl}/api/profiles/${p.id}/relationships/lists`, related: `${baseUrl}/api/profiles/${p.id}/lists` } },
      segments: { links: { self: `${baseUrl}/api/profiles/${p.id}/relationships/segments`, related: `${baseUrl}/api/profiles/${p.id}/segments` } },
    },
    links: { self: `${baseUrl}/api/profiles/${p.id}` },
  };
}

function emailSuppression(c: { consent: string; timestamp?: string }) {
  return c.consent === 'UNSUBSCRIBED' ? [{ reason: 'UNSUBSCRIBE', timestamp: c.timestamp ?? new Date(0).toISOString() }] : [];
}

function listSuppressions(p: Profile, lists: List[]) {
  return lists.flatMap((l) => {
    const at = l.unsubscribed.get(p.id);
    return at ? [{ list_id: l.id, reason: 'USER_SUPPRESSED', timestamp: at }] : [];
  });
}

function consentView(c: { consent: string; timestamp?: string; method?: string }) {
  return { consent: c.consent, consent_timestamp: c.timestamp ?? null, method: c.method ?? null, last_updated: c.timestamp ?? null };
}

export function listResource(l: List, baseUrl: string, withCount = false) {
  const attributes: Record<string, unknown> = { name: l.name, created: l.created, updated: l.updated, opt_in_process: l.opt_in_process };
  if (withCount) attributes.profile_count = l.members.size;
  return {
    type: 'list',
    id: l.id,
    attributes,
    relationships: {
      profiles: { links: { self: `${baseUrl}/api/lists/${l.id}/relationships/profiles`, related: `${baseUrl}/api/lists/${l.id}/profiles` } },
      tags: { links: { self: `${baseUrl}/api/lists/${l.id}/relationships/tags`, related: `${baseUrl}/api/lists/${l.id}/tags` } },
    },
    links: { self: `${baseUrl}/api/lists/${l.id}` },
  };
}

export function importJobResource(j: Job, baseUrl: string) {
  return {
    type: 'profile-bulk-import-job',
    id: j.id,
    attributes: {
      status: j.status,
      created_at: j.created_at,
      total_count: j.total_count,
      completed_count: j.completed_count,
      failed_count: j.failed_count,
      completed_at: j.completed_at ?? null,
      expires_at: j.expires_at ?? null,
      started_at: j.started_at ?? null,
    },
    relationships: {
      lists: { data: j.listIds.map((id) => ({ type: 'list', id })) },
      profiles: { links: { self: `${baseUrl}/api/profile-bulk-import-jobs/${j.id}/relationships/profiles`, related: `${baseUrl}/api/profile-bulk-import-jobs/${j.id}/profiles` } },
      'import-errors': { links: { related: `${baseUrl}/api/profile-bulk-import-jobs/${j.id}/import-errors` } },
    },
    links: { self: `${baseUrl}/api/profile-bulk-import-jobs/${j.id}` },
  };
}

/** JSON:API sparse fieldsets: `fields[profile]=email,phone_number` keeps only those attributes of profiles. */
export function applySparseFieldsets(body: any, query: URLSearchParams): void {
  if (!body?.data) return;
  const wanted = new Map<string, Set<string>>();
  for (const [key, value] of query) {
    const m = /^fields\[(.+)\]$/.exec(key);
    if (m) wanted.set(m[1], new Set(value.split(',').map((f) => f.split('.')[0])));
  }
  if (!wanted.size) return;
  for (const resource of Array.isArray(body.data) ? body.data : [body.data]) {
    const keep = wanted.get(resource?.type);
    if (!keep || !resource.attributes) continue;
    resource.attributes = Object.fromEntries(Object.entries(resource.attributes).filter(([k]) => keep.has(k)));
  }
}
