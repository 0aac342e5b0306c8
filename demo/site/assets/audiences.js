// The audience page: sync definitions, Instant Sync and logs over the companion server's admin API, reached
// through the demo storefront's /admin/ proxy (it adds the admin token).
(function () {
  var API = '/admin/audiences';
  var COUNTS = ['read', 'imported', 'unchanged', 'subscribed', 'unsubscribed', 'removed', 'skipped_anonymous', 'invalid', 'invalid_fields', 'failed'];
  var EXAMPLE_RULES = { all: [{ event: 'Viewed Product', count: { gte: 2 }, within: '7d', where: { Categories: { contains: 'Shoes' } } }] };
  var form = document.querySelector('[data-form]');
  var selected;
  var watching;

  function $(sel) { return document.querySelector(sel); }
  function esc(s) {
    return String(s == null ? '' : s).replace(/[&<>"]/g, function (c) { return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]; });
  }
  function call(method, path, body) {
    return fetch(API + path, {
      method: method,
      headers: body ? { 'content-type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) { return { status: r.status, ok: r.ok, data: data }; });
    });
  }
  function when(iso) {
    return iso ? new Date(iso).toLocaleString() : '—';
  }
  function statusBadge(status) {
    return '<span class="status status-' + esc(status) + '">' + esc(status) + '</span>';
  }
  function describeSource(s) {
    return s.type == 'file' ? 'File <code>' + esc(s.path) + '</code>' : 'Segment: ' + esc(describeRule(s.rules));
  }
  /** The rules in words, e.g. "Viewed Product ≥ 2× in 7d where Categories contains Shoes, and not Placed Order in 7d". */
  function describeRule(r) {
    if (r.all) return r.all.map(describeRule).join(', and ');
    if (r.any) return '(' + r.any.map(describeRule).join(', or ') + ')';
    if (r.not) return 'not ' + describeRule(r.not);
    if (r.event) {
      var c = r.count || {};
      var times = c.gte != null ? ' ≥ ' + c.gte + '×' : c.lte != null ? ' ≤ ' + c.lte + '×' : c.eq != null ? ' ' + c.eq + '×' : '';
      var where = Object.keys(r.where || {}).map(function (k) {
        var f = r.where[k];
        return k + ' ' + Object.keys(f).map(function (op) { return op + ' ' + JSON.stringify(f[op]); }).join(' ');
      });
      return r.event + times + (r.within ? ' in ' + r.within : '') + (where.length ? ' where ' + where.join(', ') : '');
    }
    if (r.trait) return 'trait ' + r.trait + (r.exists != null ? (r.exists ? ' exists' : ' missing') : r.eq !== undefined ? ' = ' + JSON.stringify(r.eq) : ' contains ' + JSON.stringify(r.contains));
    return JSON.stringify(r);
  }
  function countsText(counts) {
    var shown = COUNTS.filter(function (c) { return counts[c]; });
    return shown.length ? shown.map(function (c) { return c.replace('_', ' ') + ' ' + counts[c]; }).join(' · ') : 'nothing read';
  }

  // ---- the list of syncs ----
  function loadSyncs() {
    return call('GET', '').then(function (r) {
      var box = $('[data-syncs]');
      if (!r.ok) return (box.innerHTML = '<p class="error">' + esc(r.data.error || 'HTTP ' + r.status) + '</p>');
      if (!r.data.audiences.length) return (box.innerHTML = '<p class="muted">No syncs yet: define one below.</p>');
      box.innerHTML = r.data.audiences.map(function (a) {
        var d = a.definition;
        var last = a.last_run;
        return '<article class="sync-card" data-sync="' + esc(a.name) + '">' +
          '<header><h3>' + esc(a.name) + '</h3>' + (a.running ? statusBadge('running') : last ? statusBadge(last.status) : '<span class="muted">never run</span>') + '</header>' +
          '<p class="muted">' + describeSource(d.source) + '</p>' +
          '<p>→ list ' + esc(d.list.create ? '“' + d.list.create + '”' : d.list.id) + ' · ' + esc(d.consent) + ' · ' + esc(d.subscription.join(' + ')) +
          (d.refreshInterval ? ' · every ' + esc(d.refreshInterval) : '') + (d.enabled ? '' : ' · <strong>disabled</strong>') + ' · <span class="muted">' + esc(a.origin) + '</span></p>' +
          (last ? '<p class="muted">Last run ' + when(last.started_at) + ': ' + countsText(last.counts) + '</p>' : '') +
          '<div class="card-actions"><button class="primary" data-act="sync">Instant Sync</button><button data-act="logs">Logs</button><button data-act="edit">Edit</button></div>' +
          '</article>';
      }).join('');
    });
  }

  $('[data-syncs]').addEventListener('click', function (e) {
    var button = e.target.closest('[data-act]');
    if (!button) return;
    var name = button.closest('[data-sync]').dataset.sync;
    if (button.dataset.act == 'sync') instantSync(name);
    if (button.dataset.act == 'logs') showLogs(name);
    if (button.dataset.act == 'edit') edit(name);
  });

  function instantSync(name) {
    return call('POST', '/' + encodeURIComponent(name) + '/sync').then(function (r) {
      showLogs(name, r.ok ? null : r.data.error || 'HTTP ' + r.status);
      loadSyncs();
    });
  }

  // ---- logs, refreshed while a run is going ----
  function showLogs(name, problem) {
    if (name != selected) {
      // Another audience: never show the previous one's rows while its own load.
      $('[data-logs]').innerHTML = '<tr><td class="muted">Loading…</td></tr>';
      $('[data-members]').innerHTML = '';
    }
    selected = name;
    $('[data-log-panel]').hidden = false;
    $('[data-log-name]').textContent = name;
    clearTimeout(watching);
    return call('GET', '/' + encodeURIComponent(name) + '/logs?limit=20').then(function (r) {
      var table = $('[data-logs]');
      if (!r.ok) return (table.innerHTML = '<tr><td class="error">' + esc(r.data.error) + '</td></tr>');
      var logs = r.data.logs;
      table.innerHTML = '<thead><tr><th>started</th><th>trigger</th><th>status</th><th>time</th><th>counts</th><th>list</th><th>errors</th></tr></thead><tbody>' +
        (logs.length ? logs.map(function (l) {
          var errors = (l.error ? [l.error] : []).concat(l.errors.map(function (e) { return e.stage + (e.member ? ' ' + e.member : '') + ': ' + e.detail; }));
          return '<tr><td>' + when(l.started_at) + '</td><td>' + esc(l.trigger) + '</td><td>' + statusBadge(l.status) + '</td><td>' + (l.duration_ms == null ? '…' : l.duration_ms + ' ms') + '</td>' +
            '<td class="counts">' + esc(countsText(l.counts)) + '</td><td>' + esc(l.list_id || '') + '</td>' +
            '<td class="errors">' + (errors.length ? '<details><summary>' + errors.length + (l.errors_omitted ? '+' + l.errors_omitted : '') + '</summary>' + errors.map(esc).join('<br>') + '</details>' : '') + '</td></tr>';
        }).join('') : '<tr><td colspan="7" class="muted">No runs yet: press Instant Sync.</td></tr>') + '</tbody>';
      if (problem) table.insertAdjacentHTML('afterbegin', '<caption class="error">' + esc(problem) + '</caption>');
      var latest = logs[0];
      showMembers(latest);
      if (latest && latest.status == 'running') watching = setTimeout(function () { showLogs(name); loadSyncs(); }, 700);
    });
  }

  /** The list as the sandbox holds it now: proof the members arrived. */
  function showMembers(run) {
    var box = $('[data-members]');
    if (!run || !run.list_id) return (box.innerHTML = '');
    fetch(window.demoLinks.sandbox + '/__admin/state?latest=0').then(function (r) { return r.json(); }).then(function (state) {
      var list = state.lists.filter(function (l) { return l.id == run.list_id; })[0];
      if (!list) return (box.innerHTML = '<p class="muted">List ' + esc(run.list_id) + ' is not in the sandbox.</p>');
      var who = function (m) { return esc(m.email || m.phone_number || m.external_id || m.id); };
      box.innerHTML = '<p><strong>In the sandbox now:</strong> list “' + esc(list.name) + '” (' + esc(list.id) + ') has ' + list.members.length + ' member' + (list.members.length == 1 ? '' : 's') +
        (list.members.length ? ': ' + list.members.map(who).join(', ') : '') + (list.pending.length ? '; ' + list.pending.length + ' awaiting double opt-in' : '') +
        '. <a href="' + esc(window.demoLinks.sandbox) + '/" target="_blank">Sandbox QA page →</a></p>';
    }, function () { box.innerHTML = '<p class="error">The sandbox is unreachable.</p>'; });
  }

  $('[data-refresh-logs]').addEventListener('click', function () { if (selected) showLogs(selected); });

  // ---- the form ----
  function sourceType() { return form.sourceType.value; }
  function syncSourceFields() {
    document.querySelectorAll('[data-source]').forEach(function (el) { el.hidden = el.dataset.source != sourceType(); });
  }
  form.addEventListener('change', function (e) { if (e.target.name == 'sourceType') syncSourceFields(); });

  function parseMapping(text) {
    return text.split('\n').map(function (line) { return line.trim(); }).filter(Boolean).map(function (line) {
      var parts = line.split(/\s*(?:→|->|=>|=)\s*/);
      if (parts.length != 2 || !parts[0] || !parts[1]) throw new Error('mapping line "' + line + '": write it as "source field → Klaviyo field"');
      return { from: parts[0], to: parts[1] };
    });
  }

  function definitionFromForm() {
    var def = { name: form.name.value.trim() };
    if (sourceType() == 'segment') {
      try { def.source = { type: 'segment', rules: JSON.parse(form.rules.value) }; } catch (e) { throw new Error('rules: not valid JSON (' + e.message + ')'); }
    } else def.source = { type: 'file', path: form.path.value.trim() };
    def.list = form.listMode.value == 'id' ? { id: form.list.value.trim() } : { create: form.list.value.trim() };
    def.subscription = Array.prototype.slice.call(form.querySelectorAll('[name=channel]:checked')).map(function (c) { return c.value; });
    def.consent = form.consent.value;
    def.mapping = parseMapping(form.mapping.value);
    def.enabled = form.enabled.checked;
    def.allowAnonymous = form.allowAnonymous.checked;
    def.excludeExternalId = form.excludeExternalId.checked;
    if (form.refreshInterval.value.trim()) def.refreshInterval = form.refreshInterval.value.trim();
    return def;
  }

  function fill(d) {
    form.name.value = d.name;
    form.sourceType.value = d.source.type;
    form.rules.value = JSON.stringify(d.source.rules || EXAMPLE_RULES, null, 2);
    form.path.value = d.source.path || '';
    form.listMode.value = d.list.id ? 'id' : 'create';
    form.list.value = d.list.id || d.list.create;
    form.querySelectorAll('[name=channel]').forEach(function (c) { c.checked = d.subscription.indexOf(c.value) >= 0; });
    form.consent.value = d.consent;
    form.mapping.value = (d.mapping || []).map(function (m) { return m.from + ' → ' + m.to; }).join('\n');
    form.enabled.checked = d.enabled !== false;
    form.allowAnonymous.checked = !!d.allowAnonymous;
    form.excludeExternalId.checked = !!d.excludeExternalId;
    form.refreshInterval.value = d.refreshInterval || '';
    syncSourceFields();
  }

  function edit(name) {
    call('GET', '/' + encodeURIComponent(name)).then(function (r) {
      if (!r.ok) return;
      fill(r.data.definition);
      $('[data-form-title]').textContent = 'Edit sync “' + name + '”';
      form.scrollIntoView({ behavior: 'smooth' });
    });
  }

  function save(thenSync) {
    var issues = $('[data-issues]');
    var status = $('[data-form-status]');
    issues.innerHTML = '';
    var def;
    try { def = definitionFromForm(); } catch (e) {
      issues.innerHTML = '<li>' + esc(e.message) + '</li>';
      return;
    }
    if (!form.reportValidity()) return;
    status.textContent = 'Saving…';
    call('PUT', '/' + encodeURIComponent(def.name), def).then(function (r) {
      if (!r.ok) {
        status.textContent = '';
        issues.innerHTML = (r.data.issues || [{ field: '', message: r.data.error || 'HTTP ' + r.status }]).map(function (i) {
          return '<li>' + (i.field ? '<code>' + esc(i.field) + '</code>: ' : '') + esc(i.message) + '</li>';
        }).join('');
        return;
      }
      status.textContent = 'Saved “' + def.name + '”.';
      loadSyncs();
      if (thenSync) instantSync(def.name);
    });
  }
  form.addEventListener('submit', function (e) { e.preventDefault(); save(false); });
  $('[data-save-sync]').addEventListener('click', function () { save(true); });
  $('[data-new]').addEventListener('click', function () {
    form.reset();
    fill({ name: '', source: { type: 'segment', rules: EXAMPLE_RULES }, list: { create: '' }, subscription: ['email'], consent: 'never_subscribed', mapping: [{ from: 'email', to: 'email' }, { from: 'first_name', to: 'first_name' }] });
    $('[data-form-title]').textContent = 'Define a sync';
    form.name.focus();
  });

  fill({ name: '', source: { type: 'segment', rules: EXAMPLE_RULES }, list: { create: '' }, subscription: ['email'], consent: 'never_subscribed', mapping: [{ from: 'email', to: 'email' }, { from: 'first_name', to: 'first_name' }] });
  loadSyncs();
})();
