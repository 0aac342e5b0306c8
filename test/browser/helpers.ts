// Shared set-up for the snippet's DOM tests: a fresh fake IndexedDB and cookie jar per test, and a fetch double that
// records every request and answers from a programmable responder.
import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import Cookies from 'js-cookie';
import { onTestFinished, vi } from 'vitest';
import type { RelayApi } from '../../src/browser/types.js';
import { waitFor } from '../support/wait-for.js';

export interface Sent {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: any;
  keepalive?: boolean;
}

export type Responder = (req: Sent) => Response | Promise<Response> | 'network-error';

export function freshBrowser(respond: Responder = () => new Response(null, { status: 202 })) {
  (globalThis as any).indexedDB = new IDBFactory();
  for (const name of Object.keys(Cookies.get())) Cookies.remove(name);
  const sent: Sent[] = [];
  const state = { respond };
  const fetchDouble = vi.fn(async (url: string, init: RequestInit = {}) => {
    const headers = Object.fromEntries(Object.entries((init.headers as Record<string, string>) || {}).map(([k, v]) => [k.toLowerCase(), v]));
    let body: any = init.body;
    try {
      body = JSON.parse(String(init.body));
    } catch {}
    const req: Sent = { url: String(url), method: init.method || 'GET', headers, body, keepalive: init.keepalive };
    sent.push(req);
    const answer = await state.respond(req);
    if (answer === 'network-error') throw new TypeError('Failed to fetch');
    return answer;
  });
  vi.stubGlobal('fetch', fetchDouble);
  return { sent, state, fetch: fetchDouble };
}

export const isReady = (api: RelayApi) => new Promise<void>((ok) => api.ready(() => ok()));

/** Collects hook payloads by name. */
export function recordHooks(api: RelayApi) {
  const seen: Record<string, any[]> = { queued: [], sent: [], retry: [], dropped: [], error: [] };
  for (const hook of Object.keys(seen)) api.on(hook as any, (info) => seen[hook].push(info));
  return seen;
}

export const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });

/**
 * The snippet's clock, injected for backoff and Retry-After waits: setTimeout and Date.now are faked until the test
 * ends, so a wait passes only when the test moves time on. IndexedDB (setImmediate) and promises run for real.
 */
export function injectClock() {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  onTestFinished(() => void vi.useRealTimers());
}

/** Moves the injected clock on, `stepMs` at a time, until `check` holds. */
export const advanceUntil = <T>(check: () => Promise<T | undefined | false | null> | T | undefined | false | null, what: string, stepMs = 250) =>
  waitFor(async () => {
    await vi.advanceTimersByTimeAsync(stepMs);
    return check();
  }, { what });
