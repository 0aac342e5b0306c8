// Sign-in and navigation. Each section module exports `show(section)`, called whenever its section is opened,
// so what it shows is always fresh.
import { api, session, SIGNED_OUT } from './api.js';
import { showAlert } from './dom.js';
import * as connection from './connection.js';
import * as workflow from './workflow.js';
import * as audiences from './audiences.js';
import * as outbox from './outbox.js';

const SECTIONS = { connection, workflow, audiences, outbox };
const signInForm = document.getElementById('sign-in');
const tokenInput = /** @type {HTMLInputElement} */ (document.getElementById('admin-token'));
const nav = document.getElementById('sections-nav');
const signOutButton = document.getElementById('sign-out');

function currentSection() {
  const name = location.hash.slice(1);
  return name in SECTIONS ? name : 'connection';
}

function render() {
  const signedIn = Boolean(session.token());
  signInForm.hidden = signedIn;
  nav.hidden = !signedIn;
  signOutButton.hidden = !signedIn;
  const active = signedIn ? currentSection() : undefined;
  for (const name of Object.keys(SECTIONS)) {
    const section = document.getElementById(name);
    section.hidden = name !== active;
    const link = nav.querySelector(`a[href="#${name}"]`);
    if (name === active) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (active) SECTIONS[active].show(document.getElementById(active));
  else tokenInput.focus();
}

signInForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const alertHost = document.getElementById('sign-in-alert');
  const token = tokenInput.value.trim();
  if (!token) return showAlert(alertHost, 'Type the admin token.');
  const button = /** @type {HTMLButtonElement} */ (signInForm.querySelector('button[type=submit]'));
  button.disabled = true;
  try {
    // Any admin route proves the token; this one is cheap.
    await api('GET', '/events', undefined, token);
    session.signIn(token);
    tokenInput.value = '';
    showAlert(alertHost, '');
    render();
  } catch (err) {
    const wrong = err.status === 401 && /wrong/.test(err.message);
    showAlert(alertHost, wrong ? 'Wrong admin token: it must equal RELAY_ADMIN_TOKEN on the companion server.' : err.message);
    tokenInput.select();
  } finally {
    button.disabled = false;
  }
});

signOutButton.addEventListener('click', () => {
  session.signOut();
  render();
});

addEventListener(SIGNED_OUT, (event) => {
  render();
  showAlert(document.getElementById('sign-in-alert'), `Signed out: ${/** @type {CustomEvent} */ (event).detail}`);
});

addEventListener('hashchange', render);
render();
