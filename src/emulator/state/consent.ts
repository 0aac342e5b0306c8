// Subscribe and unsubscribe, as Klaviyo applies them: a double opt-in list records a pending confirmation
// (unless historical_import), and an unsubscribe naming a list the profile is not on unsubscribes it globally.
import type { List, ListStore } from './lists.js';
import type { Channel, Profile, ProfileStore } from './profiles.js';

export interface ConsentContext {
  profiles: ProfileStore;
  lists: ListStore;
}

/** Subscribes a profile on the given channels, optionally to a list. Returns a note for the QA page. */
export function subscribe(ctx: ConsentContext, profile: Profile, channels: Channel[], list: List | undefined, opts: { historical?: boolean; method: string }): string {
  if (list && list.opt_in_process === 'double_opt_in' && !opts.historical) {
    const now = new Date().toISOString();
    for (const channel of channels) {
      if (!profile.pendingOptIns.some((p) => p.listId === list.id && p.channel === channel)) profile.pendingOptIns.push({ listId: list.id, channel, requestedAt: now });
    }
    list.pending.set(profile.id, now);
    return `${profile.id}: double opt-in confirmation pending for list ${list.name} (${channels.join(', ')})`;
  }
  for (const channel of channels) ctx.profiles.setConsent(profile, channel, 'SUBSCRIBED', opts.method);
  delete profile.globalUnsubscribe;
  if (list) ctx.lists.addMember(list, profile.id);
  return `${profile.id}: subscribed (${channels.join(', ')})${list ? ` to list ${list.name}` : ''}`;
}

/** The person confirmed the double opt-in: SUBSCRIBED, and a member of the list. */
export function confirmOptIn(ctx: ConsentContext, profile: Profile, list: List): boolean {
  const pending = profile.pendingOptIns.filter((p) => p.listId === list.id);
  if (!pending.length) return false;
  profile.pendingOptIns = profile.pendingOptIns.filter((p) => p.listId !== list.id);
  for (const p of pending) ctx.profiles.setConsent(profile, p.channel, 'SUBSCRIBED', 'double opt-in confirmed');
  delete profile.globalUnsubscribe;
  ctx.lists.addMember(list, profile.id);
  return true;
}

/**
 * Unsubscribes a profile. On a list it is a member of: removed from that list only. On a list it is NOT a member
 * of, or with no list: unsubscribed from marketing on those channels everywhere (Klaviyo's documented warning);
 * it stays a member of its lists, suppressed.
 */
export function unsubscribe(ctx: ConsentContext, profile: Profile, channels: Channel[], list: List | undefined, method: string): string {
  const now = new Date().toISOString();
  if (list && list.members.has(profile.id)) {
    ctx.lists.removeMember(list, profile.id);
    list.unsubscribed.set(profile.id, now);
    return `${profile.id}: unsubscribed from list ${list.name}`;
  }
  for (const channel of channels) ctx.profiles.setConsent(profile, channel, 'UNSUBSCRIBED', method);
  profile.pendingOptIns = profile.pendingOptIns.filter((p) => !channels.includes(p.channel));
  // Like Klaviyo, members stay on their lists but can no longer be marketed to; pending opt-ins lapse.
  for (const l of ctx.lists.all()) if (!profile.pendingOptIns.some((p) => p.listId === l.id)) l.pending.delete(profile.id);
  const reason = list ? `unsubscribe named list ${list.name} (${list.id}), which the profile was not on` : 'unsubscribe without a list';
  profile.globalUnsubscribe = { at: now, channels, reason };
  return `${profile.id}: GLOBALLY unsubscribed (${channels.join(', ')}): ${reason}`;
}
