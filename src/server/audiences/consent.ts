// Step 7, consent: subscribe or unsubscribe the members still owed a consent call. They are owed one only once
// Klaviyo confirmed them on the list, and only when they are new to it, changed identifiers, or the audience's
// consent settings changed; so a rerun never re-subscribes someone who unsubscribed in Klaviyo.
// A list-level unsubscribe goes only to members confirmed on the list (Klaviyo unsubscribes anyone else
// globally); Klaviyo then takes them off the list, and the state remembers it so reruns and removals leave them be.
import { unsubscribeScope, type AudienceDefinition } from './definition.js';
import * as calls from './klaviyo-calls.js';
import { LIMITS, memberChannels, type Channel } from './payloads.js';
import type { RunScope } from './run-recorder.js';
import type { MemberState } from '../store/audience-types.js';

export interface ConsentOptions extends RunScope {
  def: AudienceDefinition;
}

export async function applyConsent({ def, klaviyo, state, rec, listId, signal }: ConsentOptions): Promise<void> {
  if (def.consent === 'never_subscribed') return;
  const subscribing = def.consent === 'subscribed';
  const fromList = !subscribing && unsubscribeScope(def) === 'list';
  const channels = def.subscription as Channel[];
  const size = subscribing ? LIMITS.subscribeProfiles : LIMITS.unsubscribeProfiles;
  for (;;) {
    const batch = await state.pendingConsent(size);
    if (!batch.length) return;
    const reachable = batch.filter((m) => memberChannels(m, channels).length);
    // Historical imports need every member's consent time: members without one take the normal opt-in path.
    const groups = subscribing && def.consentedAtField
      ? [{ historical: true, members: reachable.filter((m) => m.consented_at) }, { historical: false, members: reachable.filter((m) => !m.consented_at) }]
      : [{ historical: false, members: reachable }];
    const offList: string[] = [];
    for (const { historical, members } of groups) {
      if (!members.length) continue;
      try {
        if (subscribing) {
          await calls.subscribe(klaviyo, members, channels, listId, historical, signal);
          rec.counts.subscribed += members.length;
        } else {
          await calls.unsubscribe(klaviyo, members, channels, fromList ? listId : undefined, signal);
          rec.counts.unsubscribed += members.length;
          if (fromList) offList.push(...members.map((m) => m.member_key));
        }
      } catch (err) {
        if (!calls.isFinal4xx(err)) throw err;
        rec.failed(members.length);
        for (const m of members) rec.error({ stage: subscribing ? 'subscribe' : 'unsubscribe', member: m.member_key, detail: err.detail });
      }
    }
    // Settled either way: done, or logged as failed (a 4xx is not retried in a loop).
    await state.settleConsent(batch.map((m) => m.member_key), offList);
    rec.report();
  }
}

/**
 * Whether a member owes a consent call: never synced by this audience before, a selected channel's identifier
 * changed, the audience's consent settings changed, or a list-level unsubscribe took them off the list and this
 * import puts them back on it. A member who left the list and came back is not new: whatever they did in Klaviyo
 * meanwhile (e.g. unsubscribe) stands.
 */
export function owesConsent(
  def: AudienceDefinition,
  before: Pick<MemberState, 'email' | 'phone_number' | 'list_unsubscribed'> | undefined,
  now: { email?: string; phone_number?: string },
  settingsChanged = false,
): boolean {
  if (def.consent === 'never_subscribed') return false;
  if (!before || settingsChanged) return true;
  if (before.list_unsubscribed && def.consent === 'unsubscribed' && unsubscribeScope(def) === 'list') return true;
  return (
    (def.subscription.includes('email') && (before.email ?? undefined) !== now.email) ||
    (def.subscription.includes('sms') && (before.phone_number ?? undefined) !== now.phone_number)
  );
}
