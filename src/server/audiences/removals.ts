// Step 8, removals: members the list got from this audience that its source no longer holds are removed from
// the list (≤ 1,000 profile ids per call) after looking their Klaviyo ids up by identifier. Consent is untouched.
// Members a list-level unsubscribe already took off the list are only forgotten.
import type { KlaviyoClient } from '../klaviyo-client.js';
import * as calls from './klaviyo-calls.js';
import { LIMITS } from './payloads.js';
import type { RunScope } from './run-recorder.js';
import type { LeftMember } from '../store/audience-types.js';

/** Klaviyo profile ids by identifier: external_id first, then email, then phone for the rest. */
async function lookupIds(klaviyo: KlaviyoClient, left: LeftMember[], signal?: AbortSignal): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  let rest = left;
  for (const field of ['external_id', 'email', 'phone_number'] as const) {
    const withField = rest.filter((m) => m[field]);
    if (!withField.length) continue;
    const found = await calls.lookupProfileIds(klaviyo, field, [...new Set(withField.map((m) => m[field]!))], signal);
    for (const m of withField) {
      const hit = found.get(field === 'email' ? m[field]!.toLowerCase() : m[field]!);
      if (hit) out.set(m.member_key, hit);
    }
    rest = rest.filter((m) => !out.has(m.member_key));
  }
  return out;
}

export async function removeLeftMembers({ klaviyo, state, rec, listId, runId, signal }: RunScope): Promise<void> {
  // Members whose removal Klaviyo refused stay in the state (tried again next run) and are skipped here.
  const refused = new Set<string>();
  for (;;) {
    const candidates = (await state.leftMembers(runId, LIMITS.removeProfiles + refused.size)).filter((m) => !refused.has(m.member_key));
    if (!candidates.length) return;
    // A list-level unsubscribe already took these off the list: nothing to ask Klaviyo, just remember they left.
    const offList = candidates.filter((m) => m.list_unsubscribed).map((m) => m.member_key);
    if (offList.length) await state.markLeft(offList);
    const left = candidates.filter((m) => !m.list_unsubscribed);
    if (!left.length) continue;
    const ids = await lookupIds(klaviyo, left, signal);
    try {
      await calls.removeFromList(klaviyo, listId, [...new Set([...ids.values()].flat())], signal);
      // Members Klaviyo has no profile for are not on the list either: they are just forgotten.
      rec.counts.removed += ids.size;
      await state.markLeft(left.map((m) => m.member_key));
    } catch (err) {
      if (!calls.isFinal4xx(err)) throw err;
      rec.failed(left.length);
      for (const m of left) {
        refused.add(m.member_key);
        rec.error({ stage: 'remove', member: m.member_key, detail: err.detail });
      }
    }
    rec.report();
  }
}
