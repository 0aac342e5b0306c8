// Outbox: counts by status, the items Klaviyo refused with its reason, and Retry failed (after the cause is fixed).
import { api } from './api.js';
import { formatTime, h, plural, replace, setStatus } from './dom.js';

const STATUSES = [['pending', 'Pending'], ['inflight', 'Sending'], ['sent', 'Sent'], ['failed', 'Failed']];
let wired = false;

export function show(section) {
  if (!wired) {
    wired = true;
    section.querySelector('#outbox-refresh').addEventListener('click', () => load(section));
    section.querySelector('#retry-failed').addEventListener('click', () => retry(section));
  }
  load(section);
}

async function load(section) {
  const status = section.querySelector('#outbox-status');
  try {
    const { counts, items, forwarding } = await api('GET', '/outbox?status=failed&limit=100');
    const state = section.querySelector('#outbox-forwarding');
    state.hidden = !forwarding;
    if (forwarding) {
      const words = { on: 'Forwarding is on.', off: 'Forwarding is off', paused: 'Forwarding is paused' };
      const retry = forwarding.retryAt ? ` It tries Klaviyo again at ${formatTime(forwarding.retryAt)}.` : '';
      state.textContent = `${words[forwarding.state] ?? forwarding.state}${forwarding.reason ? `: ${forwarding.reason.replace(/\.$/, '')}.` : ''}${retry}`;
      state.className = forwarding.state === 'on' ? 'forwarding' : 'forwarding alert';
    }
    replace(
      section.querySelector('#outbox-counts'),
      // Failed is red only when something failed: a red 0 reads as a problem.
      STATUSES.map(([key, word]) => h('div', { class: `count count-${key}${counts[key] ? ' nonzero' : ''}` }, h('dt', { text: word }), h('dd', { text: (counts[key] ?? 0).toLocaleString() }))),
    );
    section.querySelector('#retry-failed').disabled = !counts.failed;
    replace(
      section.querySelector('#outbox-failed'),
      items.length
        ? items.map((item) =>
            h('li', { class: 'item' },
              h('p', { class: 'item-head' },
                h('strong', { text: item.name ?? (item.type === 'identify' ? 'identify' : item.type) }),
                ` · ${plural(item.attempts, 'attempt')} · `,
                h('code', { text: item.unique_id }),
              ),
              h('p', { class: 'reason', text: `Klaviyo’s reason: ${item.last_error ?? 'none given'}` }),
            ),
          )
        : h('li', { class: 'muted', text: 'No failed items.' }),
    );
    if (counts.failed > items.length) section.querySelector('#outbox-failed').append(h('li', { class: 'muted', text: `… and ${(counts.failed - items.length).toLocaleString()} more` }));
  } catch (err) {
    setStatus(status, err.message, true);
  }
}

async function retry(section) {
  const status = section.querySelector('#outbox-status');
  const button = section.querySelector('#retry-failed');
  button.disabled = true;
  try {
    const { requeued } = await api('POST', '/outbox/retry-failed');
    setStatus(status, `${plural(requeued, 'item')} queued again.`);
  } catch (err) {
    setStatus(status, err.message, true);
  }
  await load(section);
}
