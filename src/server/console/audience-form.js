// The New audience / Edit form: every field of a sync definition with a label, mapping rows with Add field, and
// the server's validation errors shown next to the field each one names. With a file source, the Source field
// inputs suggest the file's own field names (its CSV header or NDJSON keys), read by the server. Segment rules are
// built from condition rows (segment-builder.js), never typed as JSON.
import { api } from './api.js';
import { clearFieldErrors, h, replace, showAlert, showFieldError, uid } from './dom.js';
import { createSegmentBuilder } from './segment-builder.js';

const EXAMPLE_RULES = { all: [{ event: 'Placed Order', count: { gte: 1 }, within: '30d' }] };
const DEFAULT_MAPPING = [{ from: 'email', to: 'email' }, { from: 'first_name', to: 'first_name' }];
/** How long typing in File pauses before its fields are read. */
const FILE_TYPING_PAUSE_MS = 400;

let form;
let onSaved;
/** The definition being edited (fields the form does not show are kept), or undefined for a new audience. */
let editing;
/** The datalist Source field inputs suggest from: the store's profile fields, or the file's own. */
let sourceFieldList = 'store-fields';
/** Bumped by each read of the file's fields, so an answer for an older path is dropped. */
let fieldsRequest = 0;
let typingTimer;
/** The Segment rules builder. */
let segment;

const $ = (selector) => form.querySelector(selector);

export function wireForm(element, options) {
  form = element;
  onSaved = options.onSaved;
  segment = createSegmentBuilder($('#a-segment'));
  $('#a-source-type').addEventListener('change', () => {
    syncVisibility();
    loadFileFields();
  });
  $('#a-file').addEventListener('input', () => {
    clearTimeout(typingTimer);
    typingTimer = setTimeout(loadFileFields, FILE_TYPING_PAUSE_MS);
  });
  $('#a-file').addEventListener('change', () => {
    clearTimeout(typingTimer);
    loadFileFields();
  });
  $('#a-list').addEventListener('change', syncVisibility);
  $('#a-consent').addEventListener('change', syncVisibility);
  $('#a-add-field').addEventListener('click', () => addMappingRow().querySelector('input').focus());
  $('#a-cancel').addEventListener('click', close);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    submit();
  });
}

/** Show the form, empty for a new audience or filled from `definition` to edit it. */
export function openForm(definition) {
  editing = definition;
  clearFieldErrors(form);
  showAlert($('#a-form-error'), '');
  $('#audience-form-title').textContent = definition ? `Edit ${definition.name}` : 'New audience';
  const def = definition ?? { source: { type: 'segment', rules: EXAMPLE_RULES }, list: { create: '' }, subscription: ['email'], consent: 'never_subscribed', mapping: DEFAULT_MAPPING };
  $('#a-name').value = def.name ?? '';
  $('#a-name').readOnly = Boolean(definition);
  $('#a-source-type').value = def.source.type;
  segment.load(def.source.type === 'segment' ? def.source.rules : EXAMPLE_RULES);
  $('#a-file').value = def.source.type === 'file' ? def.source.path : '';
  $('#a-list-name').value = 'create' in def.list ? def.list.create : '';
  $('#a-email').checked = def.subscription.includes('email');
  $('#a-sms').checked = def.subscription.includes('sms');
  $('#a-consent').value = def.consent;
  $('#a-unsubscribe-from').value = def.unsubscribeFrom ?? 'list';
  replace($('#a-mapping'));
  sourceFieldList = 'store-fields';
  for (const m of def.mapping) addMappingRow(m);
  if (!def.mapping.length) addMappingRow();
  $('#a-anonymous').checked = Boolean(def.allowAnonymous);
  $('#a-exclude-external-id').checked = Boolean(def.excludeExternalId);
  $('#a-refresh').value = def.refreshInterval ?? '';
  form.hidden = false;
  syncVisibility();
  loadFileFields();
  loadLists('id' in def.list ? def.list.id : '');
  (definition ? segment : $('#a-name')).focus();
}

function close() {
  form.hidden = true;
  editing = undefined;
  document.getElementById('new-audience').focus();
}

function useSourceFields(listId) {
  sourceFieldList = listId;
  for (const input of form.querySelectorAll('.map-from')) input.setAttribute('list', listId);
}

/**
 * With a file source, read the file's field names for the Source field suggestions. A path the server refuses
 * (outside the allowed folders, missing, unknown format) is shown next to File, as a save would show it.
 */
async function loadFileFields() {
  const file = $('#a-file');
  const note = $('#a-file-fields');
  const request = ++fieldsRequest;
  const path = file.value.trim();
  clearFieldErrors(file.closest('.field'));
  if ($('#a-source-type').value !== 'file' || !path) {
    note.textContent = '';
    return useSourceFields('store-fields');
  }
  try {
    // A definition being edited may name its format (a file without a .csv or .ndjson extension).
    const format = editing?.source.type === 'file' ? editing.source.format : undefined;
    const { fields } = await api('GET', `/file-source/fields?${new URLSearchParams({ path, ...(format ? { format } : {}) })}`);
    if (request !== fieldsRequest) return;
    replace(document.getElementById('file-fields'), fields.map((name) => h('option', { value: name })));
    useSourceFields('file-fields');
    note.textContent = fields.length
      ? `Source field suggests this file’s ${fields.length} field${fields.length === 1 ? '' : 's'}: ${fields.slice(0, 8).join(', ')}${fields.length > 8 ? ', …' : ''}.`
      : 'This file has no field names yet (an empty header).';
  } catch (err) {
    if (request !== fieldsRequest) return;
    useSourceFields('store-fields');
    note.textContent = '';
    showFieldError(file, err.message);
  }
}

function syncVisibility() {
  const type = $('#a-source-type').value;
  for (const el of form.querySelectorAll('[data-source]')) el.hidden = el.dataset.source !== type;
  form.querySelector('[data-list=new]').hidden = $('#a-list').value !== '';
  form.querySelector('[data-consent=unsubscribed]').hidden = $('#a-consent').value !== 'unsubscribed';
}

/** Fill "Existing list" from Klaviyo's lists (every page), keeping `selected` even if Klaviyo no longer has it. */
async function loadLists(selected) {
  const select = $('#a-list');
  const hint = $('#a-list-hint');
  replace(select, h('option', { value: '', text: 'None: create a new list' }));
  if (selected) select.append(h('option', { value: selected, text: selected }));
  select.value = selected;
  hint.textContent = 'Reading Klaviyo’s lists…';
  try {
    const { lists, truncated } = await api('GET', '/klaviyo/lists');
    replace(
      select,
      h('option', { value: '', text: 'None: create a new list' }),
      lists.map((l) => h('option', { value: l.id, text: `${l.name} (${l.id})` })),
      selected && !lists.some((l) => l.id === selected) && h('option', { value: selected, text: `${selected} (not found in Klaviyo)` }),
    );
    select.value = selected;
    hint.textContent = `${lists.length} list${lists.length === 1 ? '' : 's'} in Klaviyo${truncated ? ' (the first ones only)' : ''}.`;
  } catch (err) {
    hint.textContent = `Klaviyo’s lists could not be read: ${err.message}`;
  }
  syncVisibility();
}

function addMappingRow(mapping = { from: '', to: '' }) {
  const rows = $('#a-mapping');
  const n = rows.children.length + 1;
  const fromId = uid('map-from');
  const toId = uid('map-to');
  const row = h('div', { class: 'mapping-row', role: 'group', 'aria-label': `Mapping ${n}` },
    h('div', { class: 'field' },
      h('label', { for: fromId, text: 'Source field' }),
      h('input', { id: fromId, class: 'map-from', list: sourceFieldList, autocomplete: 'off', spellcheck: 'false', value: mapping.from }),
    ),
    h('span', { class: 'arrow', 'aria-hidden': 'true', text: '→' }),
    h('div', { class: 'field' },
      h('label', { for: toId, text: 'Klaviyo field' }),
      h('input', { id: toId, class: 'map-to', list: 'klaviyo-fields', autocomplete: 'off', spellcheck: 'false', value: mapping.to, placeholder: 'properties.name' }),
    ),
    h('button', { type: 'button', class: 'quiet', text: 'Remove', 'aria-label': `Remove mapping ${n}`, onclick: () => row.remove() }),
  );
  rows.append(row);
  return row;
}

/** The definition the form describes, or a list of client-side problems ({control, message}). */
function collect() {
  const problems = [];
  const def = { ...(editing ?? {}) };
  def.name = $('#a-name').value.trim();
  if ($('#a-source-type').value === 'file') {
    const previous = editing?.source.type === 'file' ? editing.source : {};
    def.source = { ...previous, type: 'file', path: $('#a-file').value.trim() };
  } else {
    const { rules, problems: ruleProblems } = segment.read();
    problems.push(...ruleProblems);
    def.source = { type: 'segment', rules };
  }
  const listId = $('#a-list').value;
  const previousList = editing && 'create' in editing.list ? editing.list : {};
  def.list = listId ? { id: listId } : { ...previousList, create: $('#a-list-name').value.trim() };
  def.subscription = [$('#a-email').checked && 'email', $('#a-sms').checked && 'sms'].filter(Boolean);
  def.consent = $('#a-consent').value;
  if (def.consent === 'unsubscribed') def.unsubscribeFrom = $('#a-unsubscribe-from').value;
  else delete def.unsubscribeFrom;
  def.mapping = [...form.querySelectorAll('.mapping-row')]
    .map((row) => ({ from: row.querySelector('.map-from').value.trim(), to: row.querySelector('.map-to').value.trim() }))
    .filter((m) => m.from || m.to);
  def.allowAnonymous = $('#a-anonymous').checked;
  def.excludeExternalId = $('#a-exclude-external-id').checked;
  const refresh = $('#a-refresh').value.trim();
  if (refresh) def.refreshInterval = refresh;
  else delete def.refreshInterval;
  return { def, problems };
}

/** The control an API issue names (`name`, `source.rules.all[0].event`, `mapping[1].to`, …). */
function controlFor(field) {
  const [head] = field.split(/[.[]/);
  const mapping = /^mapping\[(\d+)\](?:\.(from|to))?/.exec(field);
  if (mapping) {
    const rows = [...form.querySelectorAll('.mapping-row')].filter((row) => row.querySelector('.map-from').value.trim() || row.querySelector('.map-to').value.trim());
    const row = rows[Number(mapping[1])];
    return row ? row.querySelector(mapping[2] === 'from' ? '.map-from' : '.map-to') : $('#a-mapping-set');
  }
  switch (head) {
    case 'name': return $('#a-name');
    case 'source': return $('#a-source-type').value === 'file' ? $('#a-file') : segment.controlFor(field);
    case 'list': return field.startsWith('list.create') || (field === 'list' && !$('#a-list').value) ? $('#a-list-name') : $('#a-list');
    case 'subscription': return $('#a-channels');
    case 'consent': return $('#a-consent');
    case 'unsubscribeFrom': return $('#a-unsubscribe-from');
    case 'mapping': return $('#a-mapping-set');
    case 'allowAnonymous': return $('#a-anonymous').closest('label');
    case 'excludeExternalId': return $('#a-exclude-external-id').closest('label');
    case 'refreshInterval': return $('#a-refresh');
    default: return undefined;
  }
}

async function submit() {
  clearFieldErrors(form);
  showAlert($('#a-form-error'), '');
  const { def, problems } = collect();
  for (const p of problems) showFieldError(p.control, p.message);
  if (problems.length) return problems[0].control.focus();
  if (!def.name) {
    showFieldError($('#a-name'), 'Give the audience a name.');
    return $('#a-name').focus();
  }
  const button = form.querySelector('button[type=submit]');
  button.disabled = true;
  try {
    await api('PUT', `/audiences/${encodeURIComponent(def.name)}`, def);
    form.hidden = true;
    editing = undefined;
    onSaved(def.name);
  } catch (err) {
    const unplaced = [];
    let first;
    for (const issue of err.issues) {
      const control = controlFor(issue.field);
      if (control) {
        showFieldError(control, issue.message);
        first ??= control;
      } else unplaced.push(`${issue.field}: ${issue.message}`);
    }
    if (unplaced.length || !err.issues.length) showAlert($('#a-form-error'), unplaced.length ? `Not saved: ${unplaced.join('; ')}` : err.message);
    (first?.matches('input, select, textarea') ? first : first?.querySelector('input, select, textarea'))?.focus();
  } finally {
    button.disabled = false;
  }
}
