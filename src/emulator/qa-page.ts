// The QA page at `/`: metrics with counts and latest events (Klaviyo's Analytics → Metrics), lists with their
// members and consent (Lists & Segments), and the recent rejected requests with why. Plain server-rendered HTML.
import type { FaultRule } from './faults.js';
import type { LoggedRequest } from './request-log.js';
import type { stateView } from './admin.js';

type View = ReturnType<typeof stateView>;

const esc = (v: unknown) =>
  String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const table = (head: string[], rows: string[][]) =>
  rows.length
    ? `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('')}</tbody></table>`
    : '<p class="empty">None yet.</p>';

const time = (iso?: string | number) => (iso ? esc(new Date(iso).toISOString().replace('T', ' ').slice(0, 19)) : '');
const json = (v: unknown, max = 160) => {
  const s = JSON.stringify(v) ?? '';
  return `<code>${esc(s.length > max ? `${s.slice(0, max)}…` : s)}</code>`;
};
const consent = (c?: string) => `<span class="c-${esc(c)}">${esc(c ?? '')}</span>`;

export function renderQaPage(view: View, rejected: LoggedRequest[], faults: FaultRule[]): string {
  const emailOf = new Map(view.profiles.map((p) => [p.id, (p.email as string) || (p.phone_number as string) || (p.external_id as string) || (p.anonymous_id as string) || p.id]));
  const metrics = view.metrics.map(
    (m) => `<section><h3>${esc(m.name)} <small>${m.count} event${m.count === 1 ? '' : 's'}${m.duplicates ? `, ${m.duplicates} duplicate${m.duplicates === 1 ? '' : 's'} dropped` : ''}</small></h3>
${table(['time', 'profile', 'value', 'properties', 'unique_id', 'via'], m.latest.map((e) => [time(e.time), esc(emailOf.get(e.profileId)), esc(e.value ?? ''), json(e.properties), esc(e.unique_id ?? ''), esc(e.source)]))}</section>`,
  );
  const member = (x: { id: string; email?: string; phone_number?: string; consent: { email?: string; sms?: string }; globalUnsubscribe?: { reason: string } }, when: string) => [
    esc(x.email ?? ''), esc(x.phone_number ?? ''), consent(x.consent.email), consent(x.consent.sms), time(when), x.globalUnsubscribe ? `<b class="warn">globally unsubscribed: ${esc(x.globalUnsubscribe.reason)}</b>` : '',
  ];
  const lists = view.lists.map(
    (l) => `<section><h3>${esc(l.name)} <small>${esc(l.id)} · ${esc(l.opt_in_process)} · ${l.members.length} member${l.members.length === 1 ? '' : 's'}${l.pending.length ? ` · ${l.pending.length} pending confirmation` : ''}</small></h3>
${table(['email', 'phone', 'email consent', 'sms consent', 'joined', 'note'], l.members.map((m) => member(m, m.joined_group_at)))}
${l.pending.length ? `<h4>Pending double opt-in</h4>${table(['email', 'phone', 'email consent', 'sms consent', 'requested', 'note'], l.pending.map((m) => [...member(m, m.requested_at).slice(0, 5), `<button data-profile="${esc(m.id)}" data-list="${esc(l.id)}">simulate confirmation click</button>`]))}` : ''}
${l.unsubscribed.length ? `<h4>Unsubscribed from this list</h4>${table(['email', 'phone', 'email consent', 'sms consent', 'unsubscribed', 'note'], l.unsubscribed.map((m) => member(m, m.unsubscribed_at)))}` : ''}</section>`,
  );
  const globallyUnsubscribed = view.profiles.filter((p) => p.globalUnsubscribe);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="3"><title>Klaviyo sandbox</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#222}h1{font-size:1.4rem}h2{border-bottom:2px solid #222;margin-top:2rem}
h3 small,h4{font-weight:normal;color:#666}table{border-collapse:collapse;width:100%;margin:.3rem 0 1rem}
td,th{border:1px solid #ddd;padding:.25rem .4rem;text-align:left;vertical-align:top}th{background:#f4f4f4}code{font-size:12px}
.empty{color:#888}.c-SUBSCRIBED{color:#070}.c-UNSUBSCRIBED,.warn{color:#b00}.c-NEVER_SUBSCRIBED{color:#777}
</style></head><body>
<h1>Klaviyo sandbox <small>${view.profiles.length} profiles · ${view.metrics.reduce((n, m) => n + m.count, 0)} events · ${faults.length} active fault rule${faults.length === 1 ? '' : 's'}</small></h1>
<p>JSON: <a href="/__admin/state">/__admin/state</a> · <a href="/__admin/requests">/__admin/requests</a>. Auto-refreshes every 3 s.</p>
<h2>Metrics</h2>${metrics.join('') || '<p class="empty">No events yet.</p>'}
<h2>Lists</h2>${lists.join('') || '<p class="empty">No lists yet.</p>'}
<h2>Globally unsubscribed profiles</h2>${table(['profile', 'channels', 'when', 'why'], globallyUnsubscribed.map((p) => [esc(emailOf.get(p.id)), esc(p.globalUnsubscribe!.channels.join(', ')), time(p.globalUnsubscribe!.at), esc(p.globalUnsubscribe!.reason)]))}
<h2>Bulk jobs</h2>${table(['id', 'type', 'status', 'total', 'completed', 'failed', 'notes'], view.jobs.slice(-20).reverse().map((j) => [esc(j.id), esc(j.type), esc(j.status), esc(j.total_count), esc(j.completed_count), esc(j.failed_count), esc(j.notes.slice(0, 5).join('; '))]))}
<h2>Recent rejected requests</h2>${table(['time', 'request', 'status', 'why', 'body'], rejected.map((r) => [time(r.time), esc(`${r.method} ${r.path}`), esc(r.status), esc(r.error), json(r.body)]))}
<script>
document.addEventListener('click', async (e) => {
  const b = e.target.closest('button[data-profile]');
  if (!b) return;
  await fetch('/__admin/confirm-opt-in', { method: 'POST', body: JSON.stringify({ profileId: b.dataset.profile, listId: b.dataset.list }) });
  location.reload();
});
</script>
</body></html>`;
}
