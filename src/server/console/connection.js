// Connection: the doctor's checks (private key and account, public key, allowed origins, audience lists, store)
// and Verify events: Klaviyo's metrics beside the store's count per event name, and both sides' counts over the
// last days.
import { api } from './api.js';
import { formatTime, h, plural, replace, setStatus } from './dom.js';

const WORDS = { ok: 'OK', fail: 'Failed', warn: 'Warning', skipped: 'Skipped' };
const ROUTE_WORDS = { client: 'Client-side', server: 'Server-side', off: 'Off' };
let wired = false;

export function show(section) {
  if (!wired) {
    wired = true;
    section.querySelector('#connection-recheck').addEventListener('click', () => loadChecks(section));
    section.querySelector('#verify-events').addEventListener('click', () => verify(section));
  }
  loadChecks(section);
}

async function loadChecks(section) {
  const list = section.querySelector('#connection-checks');
  const button = section.querySelector('#connection-recheck');
  button.disabled = true;
  replace(list, h('li', { class: 'muted', text: 'Checking…' }));
  try {
    const data = await api('GET', '/connection');
    replace(
      list,
      data.checks.map((c) =>
        h('li', { class: `check-row check-${c.status}` },
          h('span', { class: 'badge', text: WORDS[c.status] || c.status }),
          h('span', { class: 'check-name', text: c.check }),
          h('span', { class: 'check-detail', text: c.detail }),
        ),
      ),
    );
    replace(
      section.querySelector('#connection-origins'),
      data.allowedOrigins.length ? data.allowedOrigins.map((o) => h('li', {}, h('code', { text: o }))) : h('li', { class: 'muted', text: 'None.' }),
    );
  } catch (err) {
    replace(list, h('li', { class: 'check-row check-fail' }, h('span', { class: 'badge', text: 'Failed' }), h('span', { class: 'check-detail', text: err.message })));
  } finally {
    button.disabled = false;
  }
}

/** A Client or Server event whose Klaviyo count over the window is below the store's: some did not arrive. */
const isShort = (r) => r.route !== 'off' && r.klaviyoInWindow !== null && r.storeInWindow !== null && r.klaviyoInWindow < r.storeInWindow;

function klaviyoCountCell(r) {
  if (r.klaviyoInWindow === null) return h('td', { class: 'muted', text: r.store ? r.notCounted || 'not counted' : '—' });
  if (!isShort(r)) return h('td', { class: 'count', text: r.klaviyoInWindow.toLocaleString() });
  return h('td', { class: 'count', text: `${r.klaviyoInWindow.toLocaleString()}: ${(r.storeInWindow - r.klaviyoInWindow).toLocaleString()} fewer than the store` });
}

async function verify(section) {
  const status = section.querySelector('#verify-status');
  const table = /** @type {HTMLTableElement} */ (section.querySelector('#verify-table'));
  const button = /** @type {HTMLButtonElement} */ (section.querySelector('#verify-events'));
  button.disabled = true;
  setStatus(status, 'Reading Klaviyo’s metrics and counting events…');
  try {
    const { rows, truncated, window, countError } = await api('GET', '/connection/events');
    const days = plural(window.days, 'day');
    section.querySelector('#verify-store-window').textContent = `In store (${days})`;
    section.querySelector('#verify-klaviyo-window').textContent = `Klaviyo (${days})`;
    const missing = rows.filter((r) => r.store && !r.klaviyo && r.route !== 'off').length;
    const short = rows.filter(isShort).length;
    const notCounted = rows.filter((r) => r.store && r.route !== 'off' && r.klaviyoInWindow === null).length;
    replace(
      table.tBodies[0],
      rows.map((r) =>
        h('tr', { class: (r.store && !r.klaviyo && r.route !== 'off') || isShort(r) ? 'missing' : undefined },
          h('th', { scope: 'row' }, r.name, r.route && h('span', { class: 'route', text: ROUTE_WORDS[r.route] })),
          h('td', { text: r.store ? `${plural(r.store.count, 'event')}, last ${formatTime(r.store.lastSeenAt)}` : 'not in the store' }),
          h('td', { text: r.klaviyo ? `metric ${r.klaviyo.id}${r.klaviyo.integration ? ` (${r.klaviyo.integration})` : ''}` : r.route === 'off' ? 'none: set to Off' : 'no metric yet' }),
          h('td', { class: 'count', text: r.storeInWindow === null ? '—' : r.storeInWindow.toLocaleString() }),
          klaviyoCountCell(r),
        ),
      ),
    );
    table.hidden = rows.length === 0;
    const findings = [
      rows.length === 0 ? 'No events in the store or in Klaviyo yet.'
        : missing ? `${plural(missing, 'event')} of the store ${missing === 1 ? 'has' : 'have'} no metric in Klaviyo yet: check the Outbox for server-side events, and the browser console for client-side ones.`
        : 'Every event sent to Klaviyo has a metric there.',
      short ? `Over the last ${days}, Klaviyo has fewer events than the store for ${plural(short, 'event')}.` : '',
      countError || (notCounted ? `${plural(notCounted, 'event')} not counted in Klaviyo: the table says why.` : ''),
      truncated ? '(Klaviyo has more metrics than were read.)' : '',
    ];
    setStatus(status, findings.filter(Boolean).join(' '), Boolean(countError));
  } catch (err) {
    table.hidden = true;
    setStatus(status, err.message, true);
  } finally {
    button.disabled = false;
  }
}
