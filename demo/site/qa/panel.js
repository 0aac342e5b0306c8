// The QA panel: a collapsible drawer on every demo page. It must load before the snippet (it is a plain <script>
// ahead of the stub) for two reasons: its hooks go into the stub queue so no early event is missed, and the
// offline switch has to wrap fetch before the snippet's first request.
(function () {
  var links = window.demoLinks || {};
  var realFetch = window.fetch.bind(window);
  var OFFLINE_KEY = 'qa-offline';
  var OPEN_KEY = 'qa-open';

  // ---- offline simulation ----
  // The snippet sees what a real outage looks like: navigator.onLine reads false, fetch() rejects with a network
  // error, and 'offline'/'online' events fire. Kept per tab (sessionStorage) so "offline → reload" can be tried.
  var offline = sessionStorage.getItem(OFFLINE_KEY) == '1';
  var onLine = Object.getOwnPropertyDescriptor(Navigator.prototype, 'onLine');
  Object.defineProperty(Navigator.prototype, 'onLine', {
    configurable: true,
    get: function () { return offline ? false : onLine.get.call(this); },
  });
  window.fetch = function (input, init) {
    if (offline) return Promise.reject(new TypeError('Failed to fetch (QA panel: simulated offline)'));
    return realFetch(input, init);
  };
  function setOffline(value) {
    offline = value;
    sessionStorage.setItem(OFFLINE_KEY, value ? '1' : '0');
    window.dispatchEvent(new Event(value ? 'offline' : 'online'));
    render();
  }

  // ---- what the snippet reports ----
  var events = {}; // unique_id → row
  var order = []; // unique_ids, newest first
  var endpoints = {}; // destination → {until, status, reason}
  var fallback = false; // Klaviyo unreachable: client events go through the companion (relayFallback)
  var problems = []; // error hook reasons
  var pending = [];
  var relay; // the live API once ready
  var consentState = cookie('klaviyo_relay_consent') == '1' ? 'granted' : cookie('klaviyo_relay_consent') == '0' ? 'denied' : 'not required by this page (no data-require-consent)';

  function cookie(name) {
    var m = document.cookie.match(new RegExp('(?:^|; )' + name + '=([^;]*)'));
    return m && decodeURIComponent(m[1]);
  }

  function rowFor(ev, route) {
    var row = events[ev.unique_id];
    if (!row) {
      row = events[ev.unique_id] = { id: ev.unique_id, name: ev.type == 'identify' ? 'identify()' : ev.name, route: ev.route || route, time: ev.time, dest: {} };
      order.unshift(ev.unique_id);
      if (order.length > 80) delete events[order.pop()];
    }
    // An entry first seen before the workflow config arrived has no route yet; fill it in once known.
    if (!row.route) row.route = ev.route || route;
    return row;
  }

  var q = (window.klaviyoRelay = window.klaviyoRelay || []);
  q.push(['on', 'queued', function (info) {
    var row = rowFor(info.event);
    row.queued = true;
    if (info.event.route == 'client') row.dest.klaviyo = row.dest.klaviyo || 'pending';
    if (links.relay) row.dest.relay = row.dest.relay || 'pending';
    render();
  }]);
  q.push(['on', 'sent', function (info) {
    if (!info.event) return;
    rowFor(info.event).dest[info.destination] = 'sent';
    if (endpoints[info.destination]) delete endpoints[info.destination];
    soon();
  }]);
  q.push(['on', 'dropped', function (info) {
    if (!info.event) return;
    var row = rowFor(info.event);
    row.dest[info.destination || 'outbox'] = 'dropped';
    row.reason = info.reason;
    render();
  }]);
  q.push(['on', 'retry', function (info) {
    endpoints[info.destination] = { until: Date.now() + (info.waitMs || 0), status: info.status, reason: info.reason };
    if (info.fallback) fallback = true;
    render();
  }]);
  q.push(['on', 'error', function (info) {
    problems.unshift(new Date().toLocaleTimeString() + ' ' + info.reason);
    problems.length = Math.min(problems.length, 5);
    render();
  }]);
  q.push(['ready', function (api) {
    relay = api;
    pollOutbox();
  }]);

  function pollOutbox() {
    if (!relay) return;
    relay.pending().then(function (rows) {
      pending = rows || [];
      // Events restored from an earlier page load were never 'queued' here: show them too.
      pending.forEach(function (p) {
        var row = rowFor(p, p.route);
        for (var d in p.destinations) if (row.dest[d] != 'sent') row.dest[d] = p.destinations[d];
        row.attempts = p.attempts;
        row.error = p.error;
      });
      render();
    });
  }
  setInterval(pollOutbox, 1000);
  var soonTimer;
  /** After a delivery the outbox shrinks: show it without waiting for the next poll. */
  function soon() {
    clearTimeout(soonTimer);
    soonTimer = setTimeout(pollOutbox, 50);
    render();
  }

  // ---- what the servers report ----
  var workflow, sandbox, store;
  function poll() {
    if (links.sandbox)
      realFetch(links.sandbox + '/__admin/state?latest=0').then(function (r) { return r.json(); })
        .then(function (s) { sandbox = s; render(); }, function () { sandbox = { down: true }; render(); });
    realFetch('/demo-api/store').then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) { store = s; render(); }, function () {});
  }
  function loadWorkflow() {
    if (!links.relay) return;
    realFetch(links.relay + '/v1/config?key=' + encodeURIComponent(links.publicKey)).then(function (r) { return r.json(); })
      .then(function (c) { workflow = c.workflow; render(); }, function (e) { workflow = { error: String(e) }; render(); });
  }
  setInterval(poll, 1500);

  // ---- rendering ----
  var root, scheduled;
  function esc(s) {
    return String(s == null ? '' : s).replace(/[&<>"]/g, function (c) { return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]; });
  }
  function badge(route) {
    // The snippet routes an entry when it next sends: until then (no workflow config yet, or offline) it has none.
    if (!route) return '<span class="qa-route qa-unrouted" title="routed when the snippet next sends: once the workflow config is known and the tab is online">unrouted</span>';
    return '<span class="qa-route qa-' + esc(route) + '">' + esc(route) + '</span>';
  }
  var DEST_LABEL = { klaviyo: 'Klaviyo', relay: 'store', outbox: 'outbox' };
  var MARK = { sent: '✓', pending: '…', dropped: '✕' };
  function chips(row) {
    var out = Object.keys(row.dest).map(function (d) {
      return '<span class="qa-chip qa-' + row.dest[d] + '" title="' + esc(d + ': ' + row.dest[d]) + '">' + DEST_LABEL[d] + ' ' + MARK[row.dest[d]] + '</span>';
    });
    // A server event's last hop: the companion server forwarding it to Klaviyo with the private key.
    var kept = store && store.events.filter(function (e) { return e.unique_id == row.id; })[0];
    if (kept && kept.forward_status)
      out.push('<span class="qa-chip qa-' + (kept.forward_status == 'sent' ? 'sent' : kept.forward_status == 'failed' ? 'dropped' : 'pending') +
        '" title="companion server → Klaviyo: ' + esc(kept.forward_status + (kept.last_error ? ' (' + kept.last_error + ')' : '')) + '">→ Klaviyo ' +
        (kept.forward_status == 'sent' ? '✓' : kept.forward_status == 'failed' ? '✕' : '…') + '</span>');
    return out.join(' ');
  }

  function section(title, body, extra) {
    return '<section class="qa-section"><h3>' + title + (extra ? '<span class="qa-extra">' + extra + '</span>' : '') + '</h3>' + body + '</section>';
  }

  function connectionSection() {
    var waits = Object.keys(endpoints).filter(function (d) { return endpoints[d].until > Date.now(); }).map(function (d) {
      var e = endpoints[d];
      return '<p class="qa-warn">' + DEST_LABEL[d] + ' paused ' + Math.ceil((e.until - Date.now()) / 1000) + ' s after ' + esc(e.status ? 'HTTP ' + e.status : 'a network error') + (e.reason ? ': ' + esc(e.reason) : '') + '</p>';
    });
    return section('Connection',
      '<label class="qa-switch"><input type="checkbox" data-qa="offline"' + (offline ? '' : ' checked') + '><span></span>' +
      (offline ? '<strong class="qa-bad">Offline (simulated)</strong>' : '<strong class="qa-good">Online</strong>') + '</label>' +
      '<p class="qa-note">The switch simulates an outage for this tab: the snippet\'s <code>fetch</code> rejects, <code>navigator.onLine</code> reads false, and <code>offline</code>/<code>online</code> events fire. It survives a reload, so you can go offline, track, reload, then come back online.</p>' +
      (fallback ? '<p class="qa-warn">Klaviyo is unreachable from this browser: client events now go through the companion server</p>' : '') +
      waits.join('') + problems.map(function (p) { return '<p class="qa-warn">' + esc(p) + '</p>'; }).join('') +
      '<div class="qa-buttons"><button data-qa="flush">Flush now</button><button data-qa="grant">Grant consent</button><button data-qa="deny">Deny consent</button><button data-qa="reset">Reset identity</button></div>' +
      '<p class="qa-note">Consent: ' + esc(consentState) + '. Denial clears the outbox and the id cookie.</p>');
  }

  function outboxSection() {
    var body = pending.length
      ? '<table><tr><th>event</th><th>route</th><th>owes</th><th>tries</th></tr>' + pending.map(function (p) {
          var owes = Object.keys(p.destinations).filter(function (d) { return p.destinations[d] == 'pending'; }).map(function (d) { return DEST_LABEL[d]; }).join(', ') || p.error || '—';
          return '<tr title="' + esc(p.error || '') + '"><td>' + esc(p.type == 'identify' ? 'identify()' : p.name) + '</td><td>' + badge(p.route) + '</td><td>' + esc(owes) + '</td><td>' + p.attempts + (p.error ? ' <span class="qa-bad">!</span>' : '') + '</td></tr>';
        }).join('') + '</table>'
      : '<p class="qa-empty">Empty: everything is delivered.</p>';
    return section('Outbox <span class="qa-count">' + pending.length + '</span>', body, 'IndexedDB, live');
  }

  function eventsSection() {
    var rows = order.map(function (id) { return events[id]; });
    var body = rows.length
      ? '<table><tr><th>event</th><th>route</th><th>status</th></tr>' + rows.map(function (r) {
          // The unique_id and any error are text, not only tooltips, so a QA tester can select and copy them.
          var why = r.reason || r.error;
          return '<tr><td>' + esc(r.name) + '<br><code class="qa-id">' + esc(r.id) + '</code>' + (why ? '<div class="qa-warn">' + esc(why) + '</div>' : '') +
            '</td><td>' + badge(r.route) + '</td><td>' + chips(r) + '</td></tr>';
        }).join('') + '</table>'
      : '<p class="qa-empty">No events yet.</p>';
    return section('Events', body, 'client → Klaviyo · server → store → Klaviyo · off → store only');
  }

  function workflowSection() {
    if (!workflow) return section('Workflow toggles', '<p class="qa-empty">Loading…</p>');
    if (workflow.error) return section('Workflow toggles', '<p class="qa-warn">' + esc(workflow.error) + '</p>');
    var names = Object.keys(workflow.events || {});
    var mode = function (t) {
      if (typeof t == 'string') return badge(t);
      return badge(t.client ? 'client' : t.server ? 'server' : 'off') + ' <span class="qa-note">' + esc(JSON.stringify(t)) + '</span>';
    };
    return section('Workflow toggles',
      '<table>' + names.map(function (n) { return '<tr><td>' + esc(n == '$identify' ? 'identify()' : n) + '</td><td>' + mode(workflow.events[n]) + '</td></tr>'; }).join('') +
      '<tr><td><em>any other event</em></td><td>' + badge(workflow.default || 'server') + '</td></tr></table>',
      'from GET /v1/config');
  }

  function sandboxSection() {
    var link = '<a href="' + esc(links.sandbox) + '/" target="_blank">sandbox QA page →</a>';
    if (!sandbox) return section('Klaviyo sandbox', '<p class="qa-empty">Loading…</p>', link);
    if (sandbox.down) return section('Klaviyo sandbox', '<p class="qa-warn">Sandbox unreachable at ' + esc(links.sandbox) + '</p>', link);
    var metrics = sandbox.metrics || [];
    var body = metrics.length
      ? '<table><tr><th>metric</th><th>events</th><th>dup</th></tr>' + metrics.map(function (m) {
          return '<tr><td>' + esc(m.name) + '</td><td>' + m.count + '</td><td>' + (m.duplicates || 0) + '</td></tr>';
        }).join('') + '</table>'
      : '<p class="qa-empty">No metrics received yet.</p>';
    var lists = (sandbox.lists || []).map(function (l) { return esc(l.name) + ' (' + (l.members ? l.members.length : 0) + ')'; }).join(', ');
    return section('Klaviyo sandbox: received metrics', body + '<p class="qa-note">' + (sandbox.profiles || []).length + ' profiles' + (lists ? ' · lists: ' + lists : '') + '</p>', link);
  }

  function storeSection() {
    if (!store) return '';
    var routes = ['client', 'server', 'off'].map(function (r) { return badge(r) + ' ' + (store.byRoute[r] || 0); }).join(' &nbsp; ');
    var f = store.forward;
    return section('Companion server store',
      '<p>' + routes + '</p><p class="qa-note">Forwarding outbox: ' + (f.sent || 0) + ' sent, ' + (f.pending || 0) + ' pending, ' + (f.inflight || 0) + ' in flight, ' + (f.failed || 0) + ' failed · ' + store.profiles + ' stitched profiles. Every event gets a store copy; only <em>server</em> ones are forwarded, <em>off</em> ones stay here.</p>',
      'SQLite');
  }

  /**
   * Writes an element's HTML only when it changed. The panel is asked to render after every poll; rebuilding it
   * each time would drop a text selection (a unique_id, an error) before it could be copied.
   */
  function update(el, html) {
    if (el.qaHtml === html) return;
    el.qaHtml = html;
    el.innerHTML = html;
  }

  var SECTIONS = [connectionSection, outboxSection, eventsSection, workflowSection, sandboxSection, storeSection];
  function render() {
    if (!root || scheduled) return;
    scheduled = true;
    requestAnimationFrame(function () {
      scheduled = false;
      var slots = root.querySelector('.qa-body').children;
      SECTIONS.forEach(function (section, i) { update(slots[i], section()); });
      update(root.querySelector('.qa-status'), (offline ? '<span class="qa-bad">offline</span>' : '<span class="qa-good">online</span>') + ' · outbox ' + pending.length);
      // How many times the panel has checked for changes: lets a test wait for renders without a clock.
      root.dataset.qaRenders = String(Number(root.dataset.qaRenders || 0) + 1);
    });
  }

  function act(what) {
    if (what == 'offline') return setOffline(!offline);
    if (what == 'flush') klaviyoRelay.flush();
    if (what == 'grant' || what == 'deny') {
      klaviyoRelay.consent({ granted: what == 'grant' });
      consentState = what == 'grant' ? 'granted' : 'denied';
    }
    if (what == 'reset') klaviyoRelay.reset();
    setTimeout(pollOutbox, 100);
    render();
  }

  function mount() {
    root = document.createElement('aside');
    root.className = 'qa-panel';
    root.setAttribute('data-qa-panel', '');
    root.innerHTML = '<button class="qa-toggle" data-qa="toggle" title="Show or hide the QA panel">QA <span class="qa-status"></span></button><div class="qa-body">' + SECTIONS.map(function () { return '<div></div>'; }).join('') + '</div>';
    document.body.appendChild(root);
    var saved = localStorage.getItem(OPEN_KEY);
    var open = saved ? saved == '1' : innerWidth >= 900; // on a phone it would cover the shop
    document.documentElement.classList.toggle('qa-open', open);
    root.addEventListener('click', function (e) {
      var el = e.target.closest('[data-qa]');
      if (!el) return;
      if (el.dataset.qa == 'toggle') {
        var now = !document.documentElement.classList.contains('qa-open');
        document.documentElement.classList.toggle('qa-open', now);
        localStorage.setItem(OPEN_KEY, now ? '1' : '0');
        return;
      }
      act(el.dataset.qa);
    });
    loadWorkflow();
    poll();
    render();
  }
  if (document.readyState == 'loading') document.addEventListener('DOMContentLoaded', mount);
  else mount();
})();
