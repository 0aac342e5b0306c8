// The companion server's config file (docs/configuration.md), validated with zod. Secrets never live here: they
// come from env only, so a config file can be committed and shared.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { workflowSchema } from '../shared/workflow-schema.js';
import { audienceDefinitionSchema } from './audiences/definition.js';
import { sourcePathProblem } from './audiences/file-source.js';
import { describeIssues, suggestKnownKeys } from '../shared/zod-issues.js';

export const relayConfigSchema = z
  .strictObject({
    publicKey: z
      .string()
      .min(1, { error: 'set publicKey to your Klaviyo Public API Key (site id)' })
      // The snippet puts publicKey in every page: a Private API Key there would be published to every visitor.
      .refine((key) => !key.startsWith('pk_'), {
        error: 'this is a Private API Key (pk_…): publicKey is the 6-character Public API Key (site id); keep the private key in KLAVIYO_PRIVATE_KEY only',
      }),
    allowedOrigins: z
      .array(z.string().regex(/^https?:\/\/[^/\s]+$/, { error: 'must be an origin such as "https://shop.example" (scheme and host, no path)' }))
      .default([]),
    workflow: workflowSchema.default({ events: {} }),
    audiences: z.array(audienceDefinitionSchema).default([]),
    /** Folders besides the config file's own that audience file sources may read (absolute, or relative to it). */
    audienceFileRoots: z.array(z.string().min(1)).default([]),
    /** Requests per minute per IP on the public routes, or {max, windowMs}. */
    rateLimit: z
      .union([z.number().int().positive(), z.strictObject({ max: z.number().int().positive(), windowMs: z.number().int().positive() })], {
        error: 'must be a whole number of requests per minute per IP, such as 600 (not "600"), or {"max": 600, "windowMs": 60000}',
      })
      .default(600),
    /** ISO 3166 region used to parse phone numbers without a leading "+". */
    defaultPhoneRegion: z.string().length(2).optional(),
  })
  .superRefine((cfg, ctx) => {
    const seen = new Set<string>();
    cfg.audiences.forEach((a, i) => {
      if (seen.has(a.name)) ctx.addIssue({ code: 'custom', path: ['audiences', i, 'name'], message: `duplicate audience name "${a.name}"` });
      seen.add(a.name);
    });
  });

export type RelayConfig = z.output<typeof relayConfigSchema>;
export type RelayConfigInput = z.input<typeof relayConfigSchema>;

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Validate a config. With `configDir`, audience file sources must also stay inside their allowed folders. */
export function parseConfig(input: unknown, source = 'config', configDir?: string): RelayConfig {
  const result = relayConfigSchema.safeParse(input, { error: suggestKnownKeys });
  if (!result.success) throw new ConfigError(`Invalid ${source}:\n- ${describeIssues(result.error, '\n- ')}`);
  if (configDir !== undefined) {
    const roots = { configDir, fileRoots: result.data.audienceFileRoots };
    const problems = result.data.audiences.flatMap((a, i) => {
      const problem = a.source.type === 'file' ? sourcePathProblem(a.source.path, roots) : undefined;
      return problem ? [`- audiences[${i}].source.path: ${problem}`] : [];
    });
    if (problems.length) throw new ConfigError(`Invalid ${source}:\n${problems.join('\n')}`);
  }
  return result.data;
}

/** Read and validate a config file. Relative paths inside it (e.g. audience file sources) resolve against `dir`. */
export function loadConfigFile(path: string): { config: RelayConfig; path: string; dir: string } {
  const abs = resolve(path);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    throw new ConfigError(`Cannot read config file ${abs}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}. Pass --config FILE.`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`Config file ${abs} is not valid JSON: ${withLineAndColumn((err as Error).message, text)}`);
  }
  return { config: parseConfig(json, `config file ${abs}`, dirname(abs)), path: abs, dir: dirname(abs) };
}

/** The environment the server reads. Secrets (private key, admin token) come only from here. */
export function readEnv(env: NodeJS.ProcessEnv = process.env) {
  return {
    privateKey: env.KLAVIYO_PRIVATE_KEY || undefined,
    adminToken: env.RELAY_ADMIN_TOKEN || undefined,
    klaviyoBaseUrl: parseBaseUrl(env.KLAVIYO_BASE_URL),
    port: env.PORT ? Number(env.PORT) : undefined,
    host: env.HOST || undefined,
    dataDir: env.RELAY_DATA_DIR || './.klaviyo-relay',
    /** postgres://… moves every piece of state to PostgreSQL (shared by any number of instances). */
    databaseUrl: env.DATABASE_URL || undefined,
    /** How long a killed instance's outbox claims wait before another instance takes them over (PostgreSQL). */
    forwardLeaseMs: parseLeaseMs('RELAY_FORWARD_LEASE_MS', env.RELAY_FORWARD_LEASE_MS),
    /** How long a killed process's audience run lease holds before the next run may take over and resume. */
    audienceLeaseMs: parseLeaseMs('RELAY_AUDIENCE_LEASE_MS', env.RELAY_AUDIENCE_LEASE_MS),
    trustProxy: parseTrustProxy(env.RELAY_TRUST_PROXY),
  };
}

/** Node 20 says where JSON breaks as a character offset ("at position 612"); an editor wants the line and column. */
function withLineAndColumn(message: string, text: string): string {
  const position = /at position (\d+)/.exec(message);
  if (!position || /line \d+ column \d+/.test(message)) return message;
  const before = text.slice(0, Number(position[1])).split('\n');
  return `${message} (line ${before.length} column ${before[before.length - 1]!.length + 1})`;
}

/** A URL without its scheme ("localhost:4010") would only surface later as "cannot reach Klaviyo". */
function parseBaseUrl(value: string | undefined): string | undefined {
  if (!value) return undefined;
  let protocol: string | undefined;
  try {
    protocol = new URL(value).protocol;
  } catch {
    // not a URL at all: refused below
  }
  if (protocol !== 'http:' && protocol !== 'https:') {
    throw new ConfigError(`KLAVIYO_BASE_URL must be an http:// or https:// URL such as https://a.klaviyo.com or http://127.0.0.1:4010, got "${value}"`);
  }
  return value;
}

function parseLeaseMs(name: string, value: string | undefined): number | undefined {
  if (!value) return undefined;
  const ms = Number(value);
  if (!Number.isInteger(ms) || ms < 1000) throw new ConfigError(`${name} must be a whole number of milliseconds ≥ 1000, got "${value}"`);
  return ms;
}

/**
 * RELAY_TRUST_PROXY: behind a reverse proxy every request comes from the proxy's address, so the per-IP rate
 * limit needs X-Forwarded-For. "true" trusts any proxy, a number that many hops, otherwise a comma-separated
 * list of proxy addresses/CIDRs (Fastify's trustProxy).
 */
export function parseTrustProxy(value: string | undefined): boolean | number | string | undefined {
  if (!value) return undefined;
  if (value === 'true' || value === 'false') return value === 'true';
  if (/^\d+$/.test(value)) return Number(value);
  return value;
}
