// The console talks only to the companion server's /v1/admin API, with the admin token as a Bearer header.
// The token lives in sessionStorage (this tab, until it closes or the operator signs out), never in a URL.
const TOKEN_KEY = 'klaviyo-relay.admin-token';
// Relative, so the console also works when a reverse proxy serves the relay under a path prefix.
const BASE = new URL('../v1/admin', document.baseURI).pathname;

export const session = {
  token: () => sessionStorage.getItem(TOKEN_KEY),
  signIn: (token) => sessionStorage.setItem(TOKEN_KEY, token),
  signOut: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** An answer other than 2xx: `message` is the server's error text, `issues` its per-field problems when any. */
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `the companion server answered HTTP ${status}`);
    this.status = status;
    this.body = body || {};
    this.issues = Array.isArray(this.body.issues) ? this.body.issues : [];
  }
}

/** Fired on a 401 after sign-in (token changed on the server): the page goes back to the sign-in form. */
export const SIGNED_OUT = 'klaviyo-relay:signed-out';

export async function api(method, path, body, token = session.token()) {
  let res;
  try {
    res = await fetch(BASE + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, { error: 'the companion server cannot be reached; is it running?' });
  }
  const data = await res.json().catch(() => null);
  if (res.ok) return data;
  const error = new ApiError(res.status, data);
  if (res.status === 401 && token === session.token()) {
    session.signOut();
    dispatchEvent(new CustomEvent(SIGNED_OUT, { detail: error.message }));
  }
  throw error;
}
