// The operator console's static files at /admin/ (HTML, CSS and small JS modules). No framework and no build step:
// a few forms need neither, and plain modules keep the strict CSP below. The page holds nothing secret: everything
// it shows comes from the /v1/admin API, called with the token the operator types.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/** Next to this module: src/server/console in a checkout, dist/node/server/console once built. */
export const CONSOLE_DIR = fileURLToPath(new URL('../console/', import.meta.url));

// Same-origin everything; no inline script or style, no framing (clickjacking), no referrer leaving the page.
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

export async function registerConsolePage(app: FastifyInstance): Promise<void> {
  if (!existsSync(CONSOLE_DIR)) throw new Error(`the operator console's files are missing from ${CONSOLE_DIR}: run \`npm run build\``);
  // Relative, so a reverse proxy's path prefix is kept; the page's own asset links are relative too.
  app.get('/admin', (_req, reply) => reply.redirect('admin/', 301));
  await app.register(fastifyStatic, {
    root: CONSOLE_DIR,
    prefix: '/admin/',
    index: 'index.html',
    dotfiles: 'ignore',
    cacheControl: false,
    setHeaders: (res) => {
      for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.header(name, value);
    },
  });
}
