// The HTTP pipeline: CORS → faults → route → auth → revision → rate limit → query → content type → body → handler,
// each rejection answered in Klaviyo's error shape and logged with why.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiError, errorItem } from './errors.js';
import type { FaultRule, FaultRules } from './faults.js';
import type { Handler } from './handlers/context.js';
import type { KeyConfig } from './keys.js';
import type { OpenApiSpec } from './openapi.js';
import { parseQuery } from './query.js';
import { rateLimitHeaders, type RateLimiter } from './rate-limit.js';
import type { RequestLog } from './request-log.js';
import type { RouteTable } from './routes.js';
import { MAX_PAYLOAD_BYTES } from './handlers/profiles.js';
import { applySparseFieldsets } from './handlers/resources.js';
import { authenticate, checkBody, checkContentType, checkRevision, parseJson } from './validate.js';

export interface PipelineDeps {
  spec: OpenApiSpec;
  routes: RouteTable;
  handlers: Record<string, Handler>;
  keys: KeyConfig;
  limiter?: RateLimiter;
  faults: FaultRules;
  log: RequestLog;
  revision: string;
  /** Routes outside Klaviyo's API (`/`, `/__admin/*`); returns false when the path is not theirs. */
  extra: (req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams, body: () => Promise<string>) => Promise<boolean>;
}

const CLIENT_CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Expose-Headers': 'Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset',
};

const JSON_API = 'application/vnd.api+json';

class PayloadTooLarge extends ApiError {
  constructor(bytes: number) {
    super(413, 'request_too_large', `The request body is ${bytes} bytes; Klaviyo accepts at most ${MAX_PAYLOAD_BYTES} bytes (5 MB).`);
  }
}

/** Reads the body, refusing more than 5 MB without buffering the excess. */
export function readBody(req: IncomingMessage, max = MAX_PAYLOAD_BYTES): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= max) chunks.push(chunk);
    });
    req.on('end', () => (size > max ? reject(new PayloadTooLarge(size)) : resolve(chunks.length === 1 ? chunks[0].toString('utf8') : Buffer.concat(chunks).toString('utf8'))));
    req.on('error', reject);
  });
}


function faultError(rule: FaultRule): ApiError {
  const status = rule.status!;
  const headers: Record<string, string> = {};
  if (rule.retryAfter !== undefined || status === 429) headers['Retry-After'] = String(rule.retryAfter ?? 1);
  const code = status === 429 ? 'throttled' : status >= 500 ? 'error' : 'invalid';
  return new ApiError(status, code, `Injected fault: ${status}${status === 429 ? ' (rate limited)' : ''}.`, undefined, headers);
}

export function createListener(deps: PipelineDeps) {
  const { spec, routes, handlers, keys, limiter, faults, log } = deps;

  return async function listener(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const query = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
    const isClient = path.startsWith('/client/');
    const isApi = isClient || path.startsWith('/api/');

    if (!isApi) {
      if (await deps.extra(req, res, path, query, () => readBody(req))) return;
      send(res, 404, { errors: [errorItem(404, 'not_found', `Not found: ${method} ${path}.`)] });
      return;
    }
    if (isClient && method === 'OPTIONS') {
      res.writeHead(204, {
        ...CLIENT_CORS,
        'Access-Control-Allow-Methods': 'GET, POST, OPTIONS',
        'Access-Control-Allow-Headers': req.headers['access-control-request-headers'] ?? 'content-type, revision, accept',
        'Access-Control-Max-Age': '600',
        // Chromium's Private/Local Network Access preflight, for a storefront page calling a loopback sandbox.
        ...(req.headers['access-control-request-private-network'] ? { 'Access-Control-Allow-Private-Network': 'true' } : {}),
      });
      res.end();
      return;
    }

    const cors = isClient ? CLIENT_CORS : undefined;
    let operationId: string | undefined;
    let body: unknown;
    let raw = '';
    // Klaviyo reports the steady window on every answer that was not itself rate limited.
    let rateHeaders: Record<string, string> = {};
    try {
      const rule = faults.size ? faults.pick(method, path) : undefined;
      if (rule) {
        if (rule.latencyMs) await sleep(rule.latencyMs);
        if (rule.drop) {
          log.add({ time: Date.now(), method, path, status: 0, error: 'Injected fault: connection dropped.' });
          req.socket.destroy();
          return;
        }
        if (rule.status) throw faultError(rule);
      }
      const match = routes.match(method, path);
      if (!match) throw new ApiError(404, 'not_found', `Not found: no Klaviyo endpoint at ${path}.`);
      if ('allowed' in match) throw new ApiError(405, 'method_not_allowed', `Method "${method}" not allowed on ${path}; allowed: ${match.allowed.join(', ')}.`, undefined, { Allow: match.allowed.join(', ') });
      const { operation, params } = match;
      operationId = operation.operationId;
      const handler = handlers[operationId];
      if (!handler) throw new ApiError(501, 'not_implemented', `${operationId} (${method} ${operation.path}) is a real Klaviyo endpoint that this sandbox does not emulate.`);

      // Read first, so even a rejected request shows its body in the log.
      if (method !== 'GET' && method !== 'HEAD') raw = await readBody(req);
      authenticate(operation, query, req.headers.authorization, keys);
      checkRevision(req.headers.revision as string | undefined, deps.revision);
      rateHeaders = rateLimitHeaders(limiter?.take(operation));
      const parsedQuery = parseQuery(spec, operation, query);
      if (raw.length || (operation.bodyRequired && method !== 'GET')) {
        checkContentType(req.headers['content-type']);
        body = raw.length ? parseJson(raw) : undefined;
      }
      checkBody(spec, operation, body);
      const host = req.headers.host ?? 'localhost';
      const result = handler({ operation, params, query: parsedQuery, body, baseUrl: `http://${host}`, path });
      if (query.size) applySparseFieldsets(result.body, query);
      log.add({ time: Date.now(), method, path, operationId, status: result.status, body: loggable(body, raw) });
      send(res, result.status, result.body, { ...cors, ...rateHeaders, ...result.headers });
    } catch (err) {
      const apiErr = err instanceof ApiError ? err : new ApiError(500, 'error', `Sandbox error: ${(err as Error)?.message ?? err}`);
      if (!(err instanceof ApiError)) console.error('[emulator]', err);
      log.add({ time: Date.now(), method, path, operationId, status: apiErr.status, error: apiErr.errors.map((e) => e.detail + (e.source?.pointer ? ` (${e.source.pointer})` : e.source?.parameter ? ` (${e.source.parameter})` : '')).join('; '), body: loggable(body, raw) });
      send(res, apiErr.status, { errors: apiErr.errors }, { ...cors, ...rateHeaders, ...apiErr.headers });
    }
  };
}

/** Bodies kept in the bounded log: whole when small, else a preview, so 1,000 bulk jobs cannot pin gigabytes. */
const LOGGED_BODY_BYTES = 32 * 1024;

function loggable(parsed: unknown, raw: string): unknown {
  if (!raw) return undefined;
  if (raw.length > LOGGED_BODY_BYTES) return `${raw.slice(0, 2000)}… (${raw.length} bytes)`;
  if (parsed !== undefined) return parsed;
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

export function send(res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}, contentType = JSON_API): void {
  if (res.headersSent || res.destroyed) return;
  if (body === undefined) {
    // An explicit zero length spares the chunked-encoding terminator write on every 202.
    res.writeHead(status, status === 204 ? headers : { ...headers, 'Content-Length': 0 });
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}
