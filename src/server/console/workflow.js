// Event workflow: one radiogroup per event (Client / Server / Off) plus a Default group, saved with
// "Save changes" to PUT /v1/admin/workflow. The server refuses an invalid toggle naming the event; the error is
// shown next to that event. "Reset to config file" (after an inline Yes/Cancel) sends DELETE /v1/admin/workflow.
import { api } from './api.js';
import { clearFieldErrors, formatTime, h, plural, replace, setStatus, showFieldError, uid } from './dom.js';

const ROUTES = [['client', 'Client'], ['server', 'Server'], ['off', 'Off']];
const WORD = Object.fromEntries(ROUTES);
/** The toggle that routes identify() calls. */
const IDENTIFY = '$identify';
let wired = false;
/** The rows on screen: event name → its radiogroup element. */
let groups = new Map();

export function show(section) {
  const form = section.querySelector('#workflow-form');
  if (!wired) {
    wired = true;
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      save(form);
    });
    section.querySelector('#add-event').addEventListener('click', () => addEvent(form));
    wireReset(form);
    section.querySelector('#new-event-name').addEventListener('keydown', (event) => {
      if (event.key === 'Enter') {
        event.preventDefault();
        addEvent(form);
      }
    });
  }
  load(form);
}

async function load(form) {
  const status = form.querySelector('#workflow-status');
  try {
    render(form, await api('GET', '/workflow'));
    setStatus(status, '');
  } catch (err) {
    setStatus(status, err.message, true);
  }
}

/** A radiogroup named by `labelText`, with one radio per route; `checked` may be null (nothing chosen yet). */
function radioGroup(labelText, checked, meta) {
  const labelId = uid('group');
  const name = uid('route');
  return h('div', { class: 'event-row', role: 'radiogroup', 'aria-labelledby': labelId },
    h('div', { class: 'event-label' },
      h('span', { id: labelId, class: 'event-name', text: labelText }),
      meta && h('span', { class: 'event-meta', text: meta }),
    ),
    h('div', { class: 'radios' },
      ROUTES.map(([value, word]) =>
        h('label', { class: 'radio' }, h('input', { type: 'radio', name, value, checked: value === checked }), ` ${word}`),
      ),
    ),
  );
}

function describe(row, defaultWord) {
  const parts = row.name === IDENTIFY ? ['identify() calls'] : [];
  parts.push(row.count ? `${plural(row.count, 'event')} in the store, last ${formatTime(row.lastSeenAt)}` : 'not seen yet');
  if (row.saved && row.configured && row.saved !== row.configured) parts.push(`config file: ${WORD[row.configured]}`);
  if (!row.route) parts.push(`follows Default (${defaultWord})`);
  return parts.join(' · ');
}

function render(form, view) {
  showSaved(form, view.saved);
  const def = view.workflow.default ?? null;
  const defaultWord = def ? WORD[def] : 'Client without an endpoint, Server with one';
  const defaultGroup = radioGroup('Default', def, def ? 'for events not listed below' : `not set: ${defaultWord}`);
  defaultGroup.classList.add('default-row');
  replace(form.querySelector('#workflow-default'), defaultGroup);
  groups = new Map();
  const rows = view.events.map((row) => {
    const group = radioGroup(row.name, row.route, describe(row, defaultWord));
    group.dataset.event = row.name;
    groups.set(row.name, group);
    return group;
  });
  replace(form.querySelector('#workflow-events'), rows.length ? rows : h('p', { class: 'muted', text: 'No events configured or seen yet.' }));
}

function addEvent(form) {
  const input = form.querySelector('#new-event-name');
  const name = input.value.trim();
  clearFieldErrors(form.querySelector('.add-event'));
  if (!name) return showFieldError(input, 'Type an event name, e.g. Placed Order.');
  if (groups.has(name)) {
    groups.get(name).querySelector('input').focus();
    return;
  }
  const group = radioGroup(name, null, 'new: pick a route, then Save changes');
  group.dataset.event = name;
  group.dataset.added = 'true';
  groups.set(name, group);
  const list = form.querySelector('#workflow-events');
  if (!list.querySelector('.event-row')) replace(list);
  list.append(group);
  input.value = '';
  group.querySelector('input').focus();
}

const chosen = (group) => group.querySelector('input:checked')?.value;

async function save(form) {
  const status = form.querySelector('#workflow-status');
  clearFieldErrors(form);
  const workflow = { events: {} };
  const def = chosen(form.querySelector('#workflow-default [role=radiogroup]'));
  if (def) workflow.default = def;
  // An event added here without a route would be dropped by the save and vanish from the screen without a word.
  const unpicked = [...groups.values()].filter((group) => group.dataset.added && !chosen(group));
  for (const group of unpicked) showFieldError(group, 'Pick Client, Server or Off for this new event: without one it is not saved.');
  if (unpicked.length) {
    setStatus(status, 'Not saved: pick a route for the events marked below.', true);
    /** @type {HTMLElement} */ (unpicked[0].querySelector('input')).focus();
    return;
  }
  for (const [name, group] of groups) {
    const route = chosen(group);
    if (route) workflow.events[name] = route;
  }
  const button = form.querySelector('button[type=submit]');
  button.disabled = true;
  setStatus(status, 'Saving…');
  try {
    render(form, await api('PUT', '/workflow', workflow));
    setStatus(status, 'Saved. GET /v1/config serves these toggles now; browsers pick them up on their next config check.');
  } catch (err) {
    let placed = 0;
    for (const issue of err.issues) {
      const group = issue.event !== undefined && groups.get(issue.event);
      if (group) {
        showFieldError(group, issue.message);
        placed++;
      }
    }
    setStatus(status, placed ? 'Not saved: fix the events marked below.' : err.message, true);
  } finally {
    button.disabled = false;
  }
}

/** The Reset button works only when toggles are saved; the note says how many differ from the config file. */
function showSaved(form, saved) {
  const differing = saved ? Object.keys(saved.workflow.events).length + (saved.workflow.default ? 1 : 0) : 0;
  /** @type {HTMLButtonElement} */ (form.querySelector('#workflow-reset')).disabled = !saved;
  form.querySelector('#workflow-saved-note').textContent = saved
    ? `Saved from this console ${formatTime(saved.updatedAt)}: ${plural(differing, 'toggle')} differ${differing === 1 ? 's' : ''} from the config file.`
    : 'Nothing saved from this console: browsers get the config file’s workflow.';
}

function wireReset(form) {
  const reset = /** @type {HTMLButtonElement} */ (form.querySelector('#workflow-reset'));
  const confirmBox = form.querySelector('#workflow-reset-confirm');
  const yes = /** @type {HTMLButtonElement} */ (form.querySelector('#workflow-reset-yes'));
  const cancel = /** @type {HTMLButtonElement} */ (form.querySelector('#workflow-reset-cancel'));
  const closeConfirm = (focus) => {
    confirmBox.hidden = true;
    focus.focus();
  };
  reset.addEventListener('click', () => {
    confirmBox.hidden = false;
    // The safe choice has focus; the question is the group's name, so a screen reader reads it first.
    cancel.focus();
  });
  cancel.addEventListener('click', () => closeConfirm(reset));
  confirmBox.addEventListener('keydown', (event) => {
    if (/** @type {KeyboardEvent} */ (event).key === 'Escape') closeConfirm(reset);
  });
  yes.addEventListener('click', async () => {
    const status = form.querySelector('#workflow-status');
    clearFieldErrors(form);
    yes.disabled = true;
    setStatus(status, 'Resetting…');
    try {
      render(form, await api('DELETE', '/workflow'));
      setStatus(status, 'Reset: GET /v1/config serves the config file’s workflow now; browsers pick it up on their next config check.');
      closeConfirm(form.querySelector('button[type=submit]'));
    } catch (err) {
      setStatus(status, `Not reset: ${err.message}`, true);
    } finally {
      yes.disabled = false;
    }
  });
}
