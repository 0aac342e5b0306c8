// The demo storefront: a small static server for demo/site (pages, QA panel, audience page) and dist/ (the built
// snippet). Pages get the local servers' URLs substituted in, so their stub snippet reads like one a store would
// paste. `/console` leads to the companion server's operator console, and `/demo-api/store` is a read-only view
// of the companion server's store for the QA panel.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const DEMO_DIR = fileURLToPath(new URL('.', import.meta.url));
const SITE_DIR = join(DEMO_DIR, 'site');
const DIST_DIR = resolve(DEMO_DIR, '..', 'dist');

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
  '.map': 'application/json',
  '.csv': 'text/csv; charset=utf-8',
};

/** `/dist/x` from dist/, anything else from demo/site/; never outside them. */
function fileFor(pathname) {
  const [root, rel] = pathname.startsWith('/dist/') ? [DIST_DIR, pathname.slice(6)] : [SITE_DIR, pathname.slice(1)];
  const file = normalize(join(root, rel || 'index.html'));
  if (!file.startsWith(root)) return undefined;
  return extname(file) ? file : file + '.html';
}

/**
 * `<!--#include name args-->` pulls in demo/site/partials/name.html (the stub snippet, the header), and
 * `%NAME%` placeholders become the running servers' URLs, on the host name the visitor used.
 */
async function render(html, vars) {
  const included = await replaceAsync(html, /<!--#include (\S+)\s*([^>]*?)-->/g, async (_, name, args) =>
    (await readFile(join(SITE_DIR, 'partials', `${name}.html`), 'utf8')).replaceAll('%ARGS%', args.trim()),
  );
  return included.replace(/%([A-Z_]+)%/g, (m, key) => (key in vars ? vars[key] : m));
}

async function replaceAsync(text, re, fn) {
  const parts = await Promise.all([...text.matchAll(re)].map((m) => fn(...m)));
  let i = 0;
  return text.replace(re, () => parts[i++]);
}

/** Recent rows of the companion server's store, for the QA panel: which events it kept and what it forwarded. */
/** What the QA panel shows of the companion server's store (either backend). */
async function storeView(store) {
  const [events, counts] = await Promise.all([store.recentEvents(40), store.counts()]);
  return { events, byRoute: counts.routes, forward: counts.outbox, profiles: counts.profiles };
}

const readBody = (req) =>
  new Promise((ok, fail) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => ok(Buffer.concat(chunks)));
    req.on('error', fail);
  });

/** A product picture for the ImageURL property: a tile with the product id. */
function sendSvg(res, id) {
  res.writeHead(200, { 'content-type': 'image/svg+xml', 'cache-control': 'max-age=3600' });
  res.end(`<svg xmlns="http://www.w3.org/2000/svg" width="400" height="300"><rect width="400" height="300" rx="16" fill="#2f6f5e"/><text x="200" y="170" font-family="sans-serif" font-size="56" font-weight="700" fill="#fff" text-anchor="middle">${id}</text></svg>`);
}

function sendJson(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

/**
 * Listens first (so the companion server can allow its origin), then `attach()` tells it where the others run.
 * @param {{port?: number, host?: string}} listenOn
 */
export async function startStorefront(listenOn = {}) {
  const host = listenOn.host ?? '127.0.0.1';
  /** @type {{ports: {relay: number, sandbox: number}, publicKey: string, store?: import('../dist/node/server/index.js').RelayStore}} */
  let opts;

  async function handle(req, res) {
    if (!opts) return sendJson(res, 503, { error: 'starting up' });
    const url = new URL(req.url, 'http://x');
    // Audiences (and every other operator task) live in the companion server's console, which asks for the token.
    if (url.pathname === '/console' || url.pathname === '/audiences') {
      const hostname = (req.headers.host ?? host).replace(/:\d+$/, '');
      res.writeHead(302, { location: `http://${hostname}:${opts.ports.relay}/admin/${url.pathname === '/audiences' ? '#audiences' : ''}` });
      return res.end();
    }
    const image = /^\/img\/([\w-]+)\.svg$/.exec(url.pathname);
    if (image) return sendSvg(res, image[1]);
    if (url.pathname === '/demo-api/store') return opts.store ? sendJson(res, 200, await storeView(opts.store)) : sendJson(res, 404, { error: 'no store' });
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { error: 'method not allowed' });
    const file = fileFor(decodeURIComponent(url.pathname));
    let data;
    try {
      if (!file || file.includes(`${SITE_DIR}/partials`)) throw new Error('not served');
      data = await readFile(file);
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' });
      return res.end('Not found');
    }
    const type = TYPES[extname(file)] ?? 'application/octet-stream';
    if (type.startsWith('text/html')) {
      const hostname = (req.headers.host ?? host).replace(/:\d+$/, '');
      data = await render(data.toString('utf8'), {
        PUBLIC_KEY: opts.publicKey,
        RELAY_URL: `http://${hostname}:${opts.ports.relay}`,
        SANDBOX_URL: `http://${hostname}:${opts.ports.sandbox}`,
      });
    }
    res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : data);
  }

  const server = createServer((req, res) =>
    handle(req, res).catch((err) => {
      console.error('[storefront]', err);
      if (!res.headersSent) sendJson(res, 500, { error: String(err?.message ?? err) });
      else res.end();
    }),
  );
  const sockets = new Set();
  server.on('connection', (s) => (sockets.add(s), s.on('close', () => sockets.delete(s))));
  await new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(listenOn.port ?? 0, host, ok);
  });
  const port = server.address().port;
  return {
    attach: (links) => void (opts = links),
    port,
    url: `http://${host === '127.0.0.1' ? 'localhost' : host}:${port}`,
    close: () =>
      new Promise((ok) => {
        server.close(() => ok());
        for (const s of sockets) s.destroy();
      }),
  };
}
