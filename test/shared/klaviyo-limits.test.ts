// The limits table against the vendored OpenAPI spec, whose operations carry Klaviyo's published limits as
// `x-klaviyo-ratelimit: {burst: "10/s", steady: "150/m", daily?: "150/d"}`.
// https://developers.klaviyo.com/en/docs/rate_limits_and_error_handling
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KLAVIYO_OPERATIONS } from '../../src/shared/klaviyo-limits.js';
import { operationOf } from '../../src/server/klaviyo-client.js';

const root = join(import.meta.dirname, '../..');
const spec = JSON.parse(readFileSync(join(root, 'openapi/stable.json'), 'utf8')) as { paths: Record<string, Record<string, any>> };

const byOperationId = new Map<string, { method: string; path: string; limit: Record<string, string> }>();
for (const [path, item] of Object.entries(spec.paths)) {
  for (const [method, op] of Object.entries(item)) {
    if (op?.operationId) byOperationId.set(op.operationId, { method: method.toUpperCase(), path, limit: op['x-klaviyo-ratelimit'] });
  }
}

/** Every Klaviyo path literal in the project's source, with `${…}` parts as a placeholder segment. */
function klaviyoPathsInSource(): string[] {
  const found = new Set<string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.ts')) {
        for (const m of readFileSync(full, 'utf8').matchAll(/[`'](\/(?:api|client)\/[^`'?\s]*)/g)) {
          const path = m[1]!.replace(/\$\{[^}]+\}/g, 'X');
          // Skip prefixes and wildcards in prose ("/client/", "/api/*"): they name no endpoint.
          if (!path.endsWith('/') && !path.includes('*')) found.add(path);
        }
      }
    }
  };
  for (const side of ['src/server', 'src/browser']) walk(join(root, side));
  return [...found];
}

describe('Klaviyo rate limits table', () => {
  it.each(Object.entries(KLAVIYO_OPERATIONS))('%s matches the spec: method, path and x-klaviyo-ratelimit', (operationId, op) => {
    const inSpec = byOperationId.get(operationId);
    expect(inSpec, `${operationId} is not an operation of the vendored spec`).toBeDefined();
    expect({ method: op.method, path: op.path }).toEqual({ method: inSpec!.method, path: inSpec!.path });
    const expected: Record<string, string> = { burst: `${op.burst}/s`, steady: `${op.steady}/m` };
    if ('daily' in op) expected.daily = `${op.daily}/d`;
    expect(inSpec!.limit).toEqual(expected);
  });

  it('covers every Klaviyo endpoint the project calls', () => {
    const paths = klaviyoPathsInSource();
    expect(paths).toEqual(expect.arrayContaining(['/api/events', '/api/profile-import', '/api/profile-bulk-import-jobs', '/client/events', '/api/profiles/X']));
    const templates = Object.values(KLAVIYO_OPERATIONS).map((op) => new RegExp(`^${op.path.replace(/\{[^}]+\}/g, '[^/]+')}$`));
    const unknown = paths.filter((p) => !templates.some((t) => t.test(p)));
    expect(unknown, 'endpoints called without a rate limit in the table').toEqual([]);
  });

  it('finds the operation of a request by method and path', () => {
    expect(operationOf('POST', '/api/events')).toBe('create_event');
    expect(operationOf('GET', '/api/events')).toBeUndefined();
    expect(operationOf('GET', '/api/lists/Xy12/')).toBeUndefined();
    expect(operationOf('GET', '/api/lists/Xy12')).toBe('get_list');
    expect(operationOf('DELETE', '/api/lists/Xy12/relationships/profiles')).toBe('remove_profiles_from_list');
    expect(operationOf('GET', '/api/profile-bulk-import-jobs/J1/import-errors')).toBe('get_errors_for_bulk_import_profiles_job');
    expect(operationOf('PATCH', '/api/profiles/01P')).toBe('update_profile');
  });
});
