// Consent: /client/subscriptions, /api/profile-subscription-bulk-create-jobs and …-bulk-delete-jobs.
import { invalid } from '../errors.js';
import { subscribe, unsubscribe } from '../state/consent.js';
import type { List } from '../state/lists.js';
import type { Channel } from '../state/profiles.js';
import { accepted, limit, requireIdentity, type Handler, type HandlerContext } from './context.js';

export const MAX_SUBSCRIBE_PER_JOB = 1000;
export const MAX_UNSUBSCRIBE_PER_JOB = 100;

const CHANNELS: Channel[] = ['email', 'sms'];

/** The marketing channels a profile entry asks for; each needs its identifier (email / phone_number). */
function channelsOf(attrs: any, pointer: string, defaultToIdentifiers: boolean): Channel[] {
  const subs = attrs.subscriptions;
  let channels = CHANNELS.filter((c) => subs?.[c]?.marketing);
  if (!subs && defaultToIdentifiers) channels = CHANNELS.filter((c) => attrs[c === 'email' ? 'email' : 'phone_number']);
  for (const c of channels) {
    const field = c === 'email' ? 'email' : 'phone_number';
    if (!attrs[field]) throw invalid(`A ${c} subscription needs the profile's ${field}.`, { pointer: `${pointer}/${field}` });
  }
  return channels;
}

function listOf(ctx: HandlerContext, relationship: any, pointer: string): List | undefined {
  const id = relationship?.data?.id;
  return id ? ctx.state.lists.require(id, pointer) : undefined;
}

export function subscriptionHandlers(ctx: HandlerContext): Record<string, Handler> {
  const { state } = ctx;
  const consentCtx = { profiles: state.profiles, lists: state.lists };

  return {
    create_client_subscription: (req) => {
      const data = req.body.data;
      const profileData = data.attributes.profile.data;
      const pointer = '/data/attributes/profile/data/attributes';
      const identity = requireIdentity(profileData.attributes, profileData.id, pointer, state);
      const channels = channelsOf(profileData.attributes, pointer, true);
      const list = listOf(ctx, data.relationships.list, '/data/relationships/list/data/id');
      const { subscriptions: _s, ...attributes } = profileData.attributes;
      const { profile } = state.profiles.upsert(identity, { attributes, meta: profileData.attributes.meta ?? profileData.meta }, 'client');
      subscribe(consentCtx, profile, channels, list, { method: `client subscription${data.attributes.custom_source ? ` (${data.attributes.custom_source})` : ''}` });
      return accepted();
    },

    bulk_subscribe_profiles: (req) => {
      const attrs = req.body.data.attributes;
      const entries = attrs.profiles.data;
      const base = '/data/attributes/profiles/data';
      limit(entries, MAX_SUBSCRIBE_PER_JOB, base, 'profiles');
      const historical = attrs.historical_import === true;
      const prepared = entries.map((e: any, i: number) => {
        const pointer = `${base}/${i}/attributes`;
        const identity = requireIdentity(e.attributes, e.id, pointer, state);
        const channels = channelsOf(e.attributes, pointer, false);
        if (historical) {
          for (const c of channels) {
            const at = e.attributes.subscriptions[c].marketing.consented_at;
            const where = `${pointer}/subscriptions/${c}/marketing/consented_at`;
            if (!at) throw invalid('consented_at is required when historical_import is true.', { pointer: where });
            if (Date.parse(at) > Date.now()) throw invalid('consented_at must be in the past.', { pointer: where });
          }
        }
        return { identity, channels };
      });
      const list = listOf(ctx, req.body.data.relationships?.list, '/data/relationships/list/data/id');
      state.jobs.submit('profile-subscription-bulk-create-job', prepared.length, list ? [list.id] : [], () => {
        const notes = prepared.map(({ identity, channels }: (typeof prepared)[number]) =>
          subscribe(consentCtx, state.profiles.upsert(identity).profile, channels, list, { historical, method: `bulk subscribe${attrs.custom_source ? ` (${attrs.custom_source})` : ''}` }),
        );
        return { completed: prepared.length, notes };
      });
      return accepted();
    },

    bulk_unsubscribe_profiles: (req) => {
      const entries = req.body.data.attributes.profiles.data;
      const base = '/data/attributes/profiles/data';
      limit(entries, MAX_UNSUBSCRIBE_PER_JOB, base, 'profiles');
      const prepared = entries.map((e: any, i: number) => {
        const pointer = `${base}/${i}/attributes`;
        return { identity: requireIdentity(e.attributes, e.id, pointer, state), channels: channelsOf(e.attributes, pointer, false) };
      });
      const list = listOf(ctx, req.body.data.relationships?.list, '/data/relationships/list/data/id');
      state.jobs.submit('profile-subscription-bulk-delete-job', prepared.length, list ? [list.id] : [], () => {
        const notes = prepared.map(({ identity, channels }: (typeof prepared)[number]) =>
          unsubscribe(consentCtx, state.profiles.upsert(identity).profile, channels, list, 'bulk unsubscribe'),
        );
        return { completed: prepared.length, notes };
      });
      return accepted();
    },
  };
}
