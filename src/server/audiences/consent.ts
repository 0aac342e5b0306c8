// Step 7, consent: subscribe or unsubscribe the members still owed a consent call. They are owed one only once
// Klaviyo confirmed them on the list and they were new to it or changed identifiers (pinned detail 10), so an
// unsubscribe never reaches someone who is not on the list (Klaviyo would unsubscribe them globally) and a
// rerun never re-subscribes someone who unsubscribed in Klaviyo.
import type { AudienceDefinition } from './definition.js';
import * as calls from './klaviyo-calls.js';
import { LIMITS, memberChannels, type Channel } from './payloads.js';
import type { RunScope } from './run-recorder.js';

export interface ConsentOptions extends RunScope {
  def: AudienceDefinition;
}

export async function applyConsent({ def, klaviyo, state, rec, listId, signal }: ConsentOptions): Promise<void> {
  if (def.consent === 'never_subscribed') return;
  const subscribing = def.consent === 'subscribed';
  const channels = def.subscription as Channel[];
  const size = subscribing ? LIMITS.subscribeProfiles : LIMITS.unsubscribeProfiles;
  for (;;) {
    const batch = state.pendingConsent(size);
    if (!batch.length) return;
    const reachable = batch.filter((m) => memberChannels(m, channels).length);
    // Historical imports need every member's consent time: members without one take the normal opt-in path.
    const groups = subscribing && def.consentedAtField
      ? [{ historical: true, members: reachable.filter((m) => m.consented_at) }, { historical: false, members: reachable.filter((m) => !m.consented_at) }]
      : [{ historical: false, members: reachable }];
    for (const { historical, members } of groups) {
      if (!members.length) continue;
      try {
        if (subscribing) {
          await calls.subscribe(klaviyo, members, channels, listId, historical, signal);
          rec.counts.subscribed += members.length;
        } else {
          await calls.unsubscribe(klaviyo, members, channels, listId, signal);
          rec.counts.unsubscribed += members.length;
        }
      } catch (err) {
        if (!calls.isFinal4xx(err)) throw err;
        rec.failed(members.length);
        for (const m of members) rec.error({ stage: subscribing ? 'subscribe' : 'unsubscribe', member: m.member_key, detail: err.detail });
      }
    }
    // Settled either way: done, or logged as failed (a 4xx is not retried in a loop).
    state.clearConsent(batch.map((m) => m.member_key));
    rec.report();
  }
}

/**
 * Whether a member owes a consent call: never synced by this audience before, or a selected channel's
 * identifier changed. A member who left the list and came back is not new: whatever they did in Klaviyo
 * meanwhile (e.g. unsubscribe) stands.
 */
export function owesConsent(
  def: AudienceDefinition,
  before: { email: string | null; phone_number: string | null } | undefined,
  now: { email?: string; phone_number?: string },
): boolean {
  if (def.consent === 'never_subscribed') return false;
  if (!before) return true;
  return (
    (def.subscription.includes('email') && (before.email ?? undefined) !== now.email) ||
    (def.subscription.includes('sms') && (before.phone_number ?? undefined) !== now.phone_number)
  );
}
