// What most e2e tests need, on 127.0.0.1 random ports: the Klaviyo sandbox, the companion server (SQLite in
// memory) forwarding to it, and a storefront page that loads the built IIFE with data-* attributes.
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect, type BrowserContext, type Page } from '@playwright/test';
import { startEmulator, type Emulator } from '../../dist/node/emulator/index.js';
import { createServer, type RelayServer } from '../../dist/node/server/index.js';

export const PUBLIC_KEY = 'ABC123';
export const PRIVATE_KEY = 'pk_e2e_0123456789abcdefghij';
export const ADMIN_TOKEN = 'e2e-admin-token-for-tests';

export interface StackOptions {
  workflow?: unknown;
  audiences?: unknown[];
  /** Extra `data-*` attributes on the snippet tag, e.g. `{ 'require-consent': '' }`. */
  attributes?: Record<string, string>;
  /** Without it the page talks to Klaviyo only (no companion server). Default true. */
  relay?: boolean;
  /** Origins the companion server accepts besides the stack's own storefront. */
  allowedOrigins?: string[];
}

export interface Stack {
  emulator: Emulator;
  relay?: RelayServer;
  relayUrl?: string;
  siteUrl: string;
  close(): Promise<void>;
}

const listen = (server: Server) =>
  new Promise<number>((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => ok((server.address() as AddressInfo).port));
  });

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const emulator = await startEmulator({ port: 0, privateKey: PRIVATE_KEY, publicKey: PUBLIC_KEY });
  let page = '';
  const snippet = readFileSync('dist/klaviyo-relay.min.js');
  const site = createHttpServer((req, res) => {
    const js = req.url == '/klaviyo-relay.min.js';
    res.writeHead(js || req.url?.startsWith('/?') || req.url == '/' ? 200 : 404, {
      'content-type': js ? 'text/javascript' : 'text/html; charset=utf-8',
      'cache-control': 'no-store',
    });
    res.end(js ? snippet : page);
  });
  const sitePort = await listen(site);
  const siteUrl = `http://127.0.0.1:${sitePort}/`;

  let relay: RelayServer | undefined;
  let relayUrl: string | undefined;
  if (options.relay !== false) {
    relay = await createServer(
      { publicKey: PUBLIC_KEY, allowedOrigins: [siteUrl.slice(0, -1), ...(options.allowedOrigins ?? [])], workflow: options.workflow as never, audiences: (options.audiences ?? []) as never },
      {
        privateKey: PRIVATE_KEY,
        adminToken: ADMIN_TOKEN,
        klaviyoBaseUrl: emulator.url,
        dataDir: ':memory:',
        forwardIntervalMs: 100,
        klaviyoRetry: { baseMs: 200, capMs: 1000 },
      },
    );
    relayUrl = await relay.listen({ port: 0, host: '127.0.0.1' });
  }
  const attrs: Record<string, string> = {
    'public-key': PUBLIC_KEY,
    'klaviyo-url': emulator.url,
    'auto-page': 'false',
    ...(relayUrl ? { endpoint: relayUrl } : {}),
    ...options.attributes,
  };
  page = `<!doctype html><meta charset="utf-8"><title>e2e shop</title>
<script async src="/klaviyo-relay.min.js" ${Object.entries(attrs).map(([k, v]) => `data-${k}="${v}"`).join(' ')}></script>`;

  return {
    emulator,
    relay,
    relayUrl,
    siteUrl,
    async close() {
      await relay?.close();
      await emulator.close();
      site.closeAllConnections();
      await new Promise((ok) => site.close(ok));
    },
  };
}

/** Waits for the snippet to load its config, then returns nothing: the page is ready for `klaviyoRelay` calls. */
export const snippetReady = (page: Page) =>
  page.waitForFunction(() => (window as any).klaviyoRelay?.track).then(() =>
    page.evaluate(() => new Promise<void>((ok) => (window as any).klaviyoRelay.ready(() => ok()))),
  );

/**
 * Resolves once nothing more can leave these pages: each outbox owes nothing, then one more flush per page has
 * finished. A flush waits for the one already running and returns only when its requests are answered, so no
 * request is still in flight to land late: a duplicate would already be in the sandbox's log.
 */
export async function drained(...pages: Page[]) {
  for (const page of pages) await expect.poll(() => page.evaluate(() => (window as any).klaviyoRelay.pending().then((p: unknown[]) => p.length)), { timeout: 15_000 }).toBe(0);
  await Promise.all(pages.map((page) => page.evaluate(() => (window as any).klaviyoRelay.flush())));
}

/** Tracks each name once and resolves with their unique_ids once every one is durably queued. */
export const trackAll = (page: Page, names: string[], props: Record<string, unknown> = {}) =>
  page.evaluate(
    ({ names, props }) =>
      new Promise<Record<string, string>>((ok) => {
        const relay = (window as any).klaviyoRelay;
        const ids: Record<string, string> = {};
        const off = relay.on('queued', (info: any) => {
          if (!names.includes(info.event.name) || ids[info.event.name]) return;
          ids[info.event.name] = info.event.unique_id;
          if (Object.keys(ids).length == names.length) off(), ok(ids);
        });
        names.forEach((name) => relay.track(name, props));
      }),
    { names, props },
  );

/** The companion server's stored events: name, route, and whether/how they were forwarded. */
export function storedEvents(relay: RelayServer) {
  return relay.db!
    .prepare(
      `SELECT e.unique_id, e.type, e.name, e.route, o.status AS forward_status
         FROM events e LEFT JOIN forward_outbox o ON o.event_id = e.id ORDER BY e.id`,
    )
    .all() as { unique_id: string; type: string; name: string | null; route: string; forward_status: string | null }[];
}

/**
 * A real outage, or its end: the browser goes offline and the sandbox drops every connection without an answer.
 * Offline mode alone still lets through the `keepalive` requests a page sends at pagehide, e.g. on a reload.
 */
export async function outage(context: BrowserContext, emulator: Emulator, down: boolean) {
  if (down) emulator.faults.add({ drop: true });
  else emulator.faults.clear();
  await context.setOffline(down);
}

/** unique_ids in accepted (2xx) requests to the sandbox at paths starting with `prefix`, one entry per event sent. */
export function acceptedUniqueIds(emulator: Emulator, prefix: string): string[] {
  const ids: string[] = [];
  for (const r of emulator.requests) {
    if (!r.path.startsWith(prefix) || r.status < 200 || r.status >= 300) continue;
    collectUniqueIds(r.body, ids);
  }
  return ids;
}

function collectUniqueIds(node: unknown, out: string[]) {
  if (!node || typeof node != 'object') return;
  if (Array.isArray(node)) return node.forEach((n) => collectUniqueIds(n, out));
  const o = node as Record<string, unknown>;
  if (o.type == 'event' && o.attributes && typeof (o.attributes as any).unique_id == 'string') out.push((o.attributes as any).unique_id);
  for (const v of Object.values(o)) collectUniqueIds(v, out);
}
