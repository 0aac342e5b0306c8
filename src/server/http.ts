// HTTP plumbing shared by every route: the origin allowlist (403 before anything else), CORS that echoes the
// allowed origin (never `*`), text/plain bodies parsed as JSON, and JSON error answers.
import cors from '@fastify/cors';
import type { FastifyError, FastifyInstance } from 'fastify';

export const BODY_LIMIT = 1_048_576; // 1 MiB: a batch of 100 events fits with room; more is refused with 413

/** Routes a browser never calls, so they skip the origin check (health probes from anywhere). */
const OPEN_PATHS = new Set(['/healthz']);

function isSameOrigin(origin: string, host: string): boolean {
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}

export async function setupHttp(app: FastifyInstance, allowedOrigins: string[]): Promise<void> {
  const allowed = new Set(allowedOrigins);

  // Before CORS, so an unknown origin gets a clear 403 (preflight included) instead of a silent CORS miss.
  // Requests without an Origin header are not from a browser page; CORS does not apply to them.
  // A page served by the relay itself (the operator console) is same-origin, not a cross-origin caller.
  app.addHook('onRequest', async (req, reply) => {
    const origin = req.headers.origin;
    if (origin === undefined || allowed.has(origin) || OPEN_PATHS.has(req.url.split('?')[0]!) || isSameOrigin(origin, req.host)) return;
    return reply.code(403).send({ error: `origin ${origin} is not allowed: add it to allowedOrigins in the relay config` });
  });

  await app.register(cors, {
    origin: [...allowed],
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS'],
    // The snippet reads Retry-After on a 429 and revalidates its config with the ETag.
    exposedHeaders: ['Retry-After', 'ETag'],
    maxAge: 600,
  });

  // A browser may send text/plain to skip the CORS preflight; it carries the same JSON, so both types share one
  // parser. Prototype keys (`__proto__`, `constructor.prototype`) are stripped wherever they sit, so one hostile
  // event neither poisons an object nor sinks the batch with it.
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser(['application/json', 'text/plain'], { parseAs: 'string' }, app.getDefaultJsonParser('remove', 'remove'));

  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: `no route ${req.method} ${req.url.split('?')[0]}` }));

  app.setErrorHandler((err: FastifyError, req, reply) => {
    const status = err.statusCode ?? 500;
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.code(413).send({ error: `request body is larger than ${BODY_LIMIT} bytes (1 MiB); send fewer events per request` });
    }
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return reply.code(415).send({ error: 'unsupported content type: send application/json, or text/plain carrying JSON' });
    }
    if (status === 400 && (err instanceof SyntaxError || err.code?.startsWith('FST_ERR_CTP'))) {
      return reply.code(400).send({ error: `malformed JSON body: ${err.message}` });
    }
    if (status === 429) return reply.code(429).send({ error: `too many requests from this address: ${err.message}` });
    if (status < 500) return reply.code(status).send({ error: err.message });
    req.log.error({ err }, 'request failed');
    return reply.code(status).send({ error: 'internal error; see the server log' });
  });
}
