// Audiences: one region per audience with its Status switch, Instant Sync and recent runs (status word, counts,
// per-member errors), and the New audience / Edit form (audience-form.js).
import { api } from './api.js';
import { formatTime, h, plural, replace, setStatus, uid } from './dom.js';
import { openForm, wireForm } from './audience-form.js';

const COUNTS = ['read', 'imported', 'unchanged', 'subscribed', 'unsubscribed', 'removed', 'skipped_anonymous', 'invalid', 'invalid_fields', 'failed'];
const CONSENT = { subscribed: 'Subscribed', never_subscribed: 'Never subscribed', unsubscribed: 'Unsubscribed' };
const RUNS_SHOWN = 5;
const POLL_MS = 1000;
let wired = false;
let listHost;

export function show(section) {
  listHost = section.querySelector('#audience-list');
  if (!wired) {
    wired = true;
    wireForm(section.querySelector('#audience-form'), { onSaved: (name) => load(name) });
    section.querySelector('#new-audience').addEventListener('click', () => openForm());
  }
  load();
}

/** Reload every audience; `focusName` scrolls to (and focuses) that audience's heading afterwards. */
export async function load(focusName) {
  try {
    const { audiences } = await api('GET', '/audiences');
    const regions = await Promise.all(audiences.map(async (a) => renderAudience(a, await runsOf(a.name))));
    replace(listHost, regions.length ? regions : h('p', { class: 'muted', text: 'No audiences yet: press New audience.' }));
    if (focusName) {
      const heading = [...listHost.querySelectorAll('h2')].find((el) => el.textContent === focusName);
      heading?.setAttribute('tabindex', '-1');
      heading?.focus();
    }
  } catch (err) {
    replace(listHost, h('p', { class: 'error', text: err.message }));
  }
}

const runsOf = (name) => api('GET', `/audiences/${encodeURIComponent(name)}/logs?limit=${RUNS_SHOWN}`).then((r) => r.logs);

function describeSource(source) {
  if (source.type === 'file') return `File ${source.path}`;
  return `Segment: ${describeRule(source.rules)}`;
}

/** Rules in words, e.g. "Viewed Product ≥ 2× in 7d where Categories contains "Shoes", and not Placed Order in 7d". */
function describeRule(rule) {
  if (rule.all) return rule.all.map(describeRule).join(', and ');
  if (rule.any) return `(${rule.any.map(describeRule).join(', or ')})`;
  if (rule.not) return `not ${describeRule(rule.not)}`;
  if (rule.event) {
    const c = rule.count || {};
    const times = c.gte != null ? ` ≥ ${c.gte}×` : c.lte != null ? ` ≤ ${c.lte}×` : c.eq != null ? ` ${c.eq}×` : '';
    const where = Object.entries(rule.where || {}).map(([field, ops]) => `${field} ${Object.entries(ops).map(([op, v]) => `${op} ${JSON.stringify(v)}`).join(' ')}`);
    return `${rule.event}${times}${rule.within ? ` in ${rule.within}` : ''}${where.length ? ` where ${where.join(', ')}` : ''}`;
  }
  if (rule.trait) {
    const test = rule.exists != null ? (rule.exists ? 'exists' : 'is missing') : rule.eq !== undefined ? `= ${JSON.stringify(rule.eq)}` : `contains ${JSON.stringify(rule.contains)}`;
    return `trait ${rule.trait} ${test}`;
  }
  return JSON.stringify(rule);
}

function renderAudience(summary, runs) {
  const def = summary.definition;
  const titleId = uid('audience');
  const message = h('p', { class: 'action-message', role: 'status' });
  const status = h('input', { type: 'checkbox', role: 'switch', checked: def.enabled !== false });
  const stateWord = h('span', { class: 'switch-state', 'aria-hidden': 'true', text: def.enabled !== false ? 'On' : 'Off' });
  const syncButton = h('button', { type: 'button', class: 'primary', text: 'Instant Sync' });
  const runList = h('ul', { class: 'runs' });
  renderRuns(runList, runs);

  status.addEventListener('change', async () => {
    status.disabled = true;
    const enabled = status.checked;
    try {
      const saved = await api('PUT', `/audiences/${encodeURIComponent(def.name)}`, { ...def, enabled });
      Object.assign(def, saved.definition);
      stateWord.textContent = enabled ? 'On' : 'Off';
      setStatus(message, enabled ? 'Status on: scheduled runs and Instant Sync are allowed.' : 'Status off: no scheduled runs; Instant Sync is refused.');
    } catch (err) {
      status.checked = !enabled;
      setStatus(message, err.message, true);
    } finally {
      status.disabled = false;
    }
  });

  syncButton.addEventListener('click', async () => {
    syncButton.disabled = true;
    setStatus(message, 'Starting…');
    try {
      const { run } = await api('POST', `/audiences/${encodeURIComponent(def.name)}/sync`);
      setStatus(message, `Run #${run.id} is running…`);
      const done = await follow(def.name, run.id, runList);
      setStatus(message, `Run #${done.id} ended: ${done.status}.`, done.status === 'failed');
    } catch (err) {
      setStatus(message, err.message, true);
    } finally {
      syncButton.disabled = false;
    }
  });

  const details = [
    ['Members', describeSource(def.source)],
    ['Klaviyo list', 'id' in def.list ? `Existing list ${def.list.id}` : `“${def.list.create}”${summary.last_run?.list_id ? ` (${summary.last_run.list_id})` : ', created at the first sync'}`],
    ['Subscription', def.subscription.map((c) => (c === 'sms' ? 'SMS' : 'Email')).join(' and ')],
    ['Consent status', `${CONSENT[def.consent] ?? def.consent}${def.consent === 'unsubscribed' ? (def.unsubscribeFrom === 'all' ? ', from all marketing on these channels' : ', from this list only') : ''}`],
    ['Mapping', def.mapping.length ? def.mapping.map((m) => `${m.from} → ${m.to}`).join(', ') : 'same-named standard fields'],
    ['Refresh interval', def.refreshInterval ? `every ${def.refreshInterval}` : 'none (Instant Sync only)'],
  ];
  if (def.allowAnonymous) details.push(['Options', 'Allow anonymous users']);
  if (def.excludeExternalId) details.push(['Options', 'Exclude External ID']);

  return h('section', { class: 'audience card', 'aria-labelledby': titleId },
    h('div', { class: 'audience-head' },
      h('h2', { id: titleId, text: def.name }),
      h('span', { class: 'origin', text: summary.origin === 'config' ? 'from the config file' : 'saved here' }),
    ),
    h('dl', { class: 'details' }, details.map(([k, v]) => [h('dt', { text: k }), h('dd', { text: v })])),
    h('div', { class: 'audience-actions' },
      h('label', { class: 'switch' }, status, ' Status'),
      stateWord,
      syncButton,
      h('button', { type: 'button', text: 'Edit', 'aria-label': `Edit ${def.name}`, onclick: () => openForm(def) }),
    ),
    message,
    h('h3', { text: 'Recent runs' }),
    runList,
  );
}

/** Poll the run's log row until it ends, re-rendering the runs as they progress. */
async function follow(name, runId, runList) {
  for (;;) {
    const runs = await runsOf(name);
    renderRuns(runList, runs);
    const run = runs.find((r) => r.id === runId);
    if (run && run.status !== 'running') return run;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

function countsText(counts) {
  const shown = COUNTS.filter((c) => counts[c]);
  return shown.length ? shown.map((c) => `${counts[c].toLocaleString()} ${c.replace('_', ' ')}`).join(' · ') : 'nothing read';
}

function renderRuns(list, runs) {
  if (!runs.length) return replace(list, h('li', { class: 'muted', text: 'No runs yet.' }));
  replace(
    list,
    runs.map((run) => {
      const errors = run.errors || [];
      const more = (run.errors_omitted || 0);
      return h('li', { class: 'run' },
        h('p', { class: 'run-head' },
          h('span', { class: `run-status status-${run.status}`, text: run.status }),
          h('span', { text: ` #${run.id} · ${formatTime(run.started_at)} · ${run.trigger}${run.duration_ms !== null ? ` · ${(run.duration_ms / 1000).toFixed(1)} s` : ''}` }),
        ),
        h('p', { class: 'run-counts', text: countsText(run.counts) }),
        run.error && h('p', { class: 'error', text: run.error }),
        errors.length > 0 &&
          h('details', {},
            h('summary', { text: plural(errors.length + more, 'member error') }),
            h('ul', { class: 'member-errors' },
              // A row that never became a member (a malformed CSV record) has no key: its stage alone says where.
              errors.map((e) => h('li', {}, e.member ? [h('code', { text: e.member }), ' '] : null, `${e.stage}: ${e.detail}`)),
              more > 0 && h('li', { class: 'muted', text: `… ${more.toLocaleString()} more (klaviyo-relay logs ${run.audience} --json)` }),
            ),
          ),
      );
    }),
  );
}
