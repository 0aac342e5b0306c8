// DOM helpers for the console. Text always goes in through textContent, never innerHTML, so nothing a store
// event, a Klaviyo answer or an audience name contains can run as markup.

/** `h('p', {class: 'hint', text: 'Hi'}, child…)`. `on<event>` keys add listeners; other keys are attributes. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'text') el.textContent = value;
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'checked' || key === 'selected' || key === 'value') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  el.append(...children.flat(Infinity).filter((c) => c !== undefined && c !== null && c !== false));
  return el;
}

export function replace(parent, ...children) {
  parent.replaceChildren(...children.flat(Infinity).filter(Boolean));
}

let ids = 0;
/** A fresh id for label/aria wiring. */
export const uid = (prefix) => `${prefix}-${++ids}`;

/** Show `message` right after `control` (an input, select, fieldset or row) and tie it to it for screen readers. */
export function showFieldError(control, message) {
  const id = `${control.id || (control.id = uid('field'))}-error`;
  let note = document.getElementById(id);
  if (!note) {
    note = h('p', { id, class: 'field-error' });
    control.after(note);
  }
  note.textContent = message;
  control.setAttribute('aria-invalid', 'true');
  const described = (control.getAttribute('aria-describedby') || '').split(' ').filter(Boolean);
  if (!described.includes(id)) control.setAttribute('aria-describedby', [...described, id].join(' '));
}

export function clearFieldErrors(root) {
  for (const note of root.querySelectorAll('.field-error')) {
    const control = root.querySelector(`[aria-describedby~="${note.id}"]`);
    if (control) {
      control.removeAttribute('aria-invalid');
      const rest = control.getAttribute('aria-describedby').split(' ').filter((x) => x !== note.id);
      if (rest.length) control.setAttribute('aria-describedby', rest.join(' '));
      else control.removeAttribute('aria-describedby');
    }
    note.remove();
  }
}

/** An alert placed in `host` (announced at once), or nothing when `message` is empty. */
export function showAlert(host, message) {
  replace(host, message ? h('p', { role: 'alert', class: 'alert', text: message }) : null);
}

/** A status line: plain when all is well, styled as an error otherwise. */
export function setStatus(el, message, isError = false) {
  el.textContent = message || '';
  el.classList.toggle('error', Boolean(isError));
}

export const formatTime = (value) => (value === null || value === undefined ? '—' : new Date(value).toLocaleString());

export const plural = (n, word, many = `${word}s`) => `${n.toLocaleString()} ${n === 1 ? word : many}`;
