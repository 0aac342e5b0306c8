// Shared set-up for the audience integration tests: a real sandbox on a random loopback port, a relay database,
// a Klaviyo client pointed at the sandbox, and a temp directory for file sources.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmulator, type Emulator } from '../../src/emulator/index.js';
import { createKlaviyoClient } from '../../src/server/klaviyo-client.js';
import { afterAll, afterEach, beforeAll, beforeEach, describe } from 'vitest';
import { BACKENDS, openSqliteBackend, type AudienceBackend } from './backends.js';
import { parseDefinition } from '../../src/server/audiences/definitions.js';
import { startRun, dryRun, type SyncEnvironment } from '../../src/server/audiences/sync.js';

export const PRIVATE_KEY = 'pk_test_0123456789abcdefghijklmn';

export interface Harness {
  emu: Emulator;
  backend: AudienceBackend;
  dir: string;
  env: SyncEnvironment;
  writeCsv(name: string, rows: Record<string, unknown>[]): string;
  /** `def` is validated by parseDefinition, as the config file and admin API would. */
  sync(def: unknown, opts?: { signal?: AbortSignal }): ReturnType<typeof runAndWait>;
  dry(def: unknown): ReturnType<typeof dryRun>;
  /** Requests the sandbox received for one operation (bodies included). */
  calls(operationId: string): Emulator['requests'];
  profileByEmail(email: string): Record<string, any> | undefined;
  close(): Promise<void>;
}

async function runAndWait(env: SyncEnvironment, def: unknown, signal?: AbortSignal) {
  const { done } = await startRun(env, parseDefinition(def), { trigger: 'test', signal });
  return done;
}

/**
 * `backend`: the store to sync into (opened by the caller, who also closes it); by default a fresh SQLite
 * database that close() removes.
 */
export async function createHarness(opts: { backend?: AudienceBackend; rateLimits?: boolean; jobDelayMs?: number; tuning?: SyncEnvironment['tuning'] } = {}): Promise<Harness> {
  const emu = await startEmulator({ port: 0, rateLimits: opts.rateLimits ?? false, jobDelayMs: opts.jobDelayMs ?? 20, privateKey: PRIVATE_KEY });
  const backend = opts.backend ?? (await openSqliteBackend());
  const dir = mkdtempSync(join(tmpdir(), 'relay-audience-'));
  const klaviyo = createKlaviyoClient({ privateKey: PRIVATE_KEY, baseUrl: emu.url, retry: { maxAttempts: 5, baseMs: 50, capMs: 50, floorMs: 0 } });
  const env: SyncEnvironment = { store: backend.store, klaviyo, configDir: dir, tuning: { pollIntervalMs: 10, pollMaxMs: 50, ...opts.tuning } };
  return {
    emu, backend, dir, env,
    writeCsv(name, rows) {
      const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
      const cell = (v: unknown) => (v === undefined || v === null ? '' : /[",\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v));
      writeFileSync(join(dir, name), [columns.join(','), ...rows.map((r) => columns.map((c) => cell(r[c])).join(','))].join('\n') + '\n');
      return name;
    },
    sync: (def, o) => runAndWait(env, def, o?.signal),
    dry: (def) => dryRun(env, parseDefinition(def)),
    calls: (operationId) => emu.requests.filter((r) => r.operationId === operationId && r.status < 400),
    profileByEmail: (email) => emu.state.profiles().find((p) => p.email === email) as Record<string, any> | undefined,
    async close() {
      await emu.close();
      if (!opts.backend) await backend.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

type HarnessOptions = Omit<NonNullable<Parameters<typeof createHarness>[0]>, 'backend'>;

/**
 * The tests in `body` run once on SQLite and once on PostgreSQL; before each test `use` receives a fresh harness
 * on an emptied database of that backend.
 */
export function onEachBackend(options: HarnessOptions, use: (h: Harness) => void, body: () => void): void {
  describe.each(BACKENDS)('on $name', ({ open }) => {
    let backend: AudienceBackend;
    let current: Harness;
    beforeAll(async () => {
      backend = await open();
    });
    afterAll(() => backend.close());
    beforeEach(async () => {
      await backend.reset();
      current = await createHarness({ ...options, backend });
      use(current);
    });
    afterEach(() => current.close());
    body();
  });
}

/** Members `from..to-1` as CSV rows. */
export const people = (from: number, to: number, extra: (i: number) => Record<string, unknown> = () => ({})) =>
  Array.from({ length: to - from }, (_, k) => {
    const i = from + k;
    return { id: `C-${i}`, email: `person${i}@example.com`, first_name: `P${i}`, ...extra(i) };
  });

export const importedProfiles = (h: Harness) =>
  h.calls('bulk_import_profiles').flatMap((r: any) => r.body.data.attributes.profiles.data as { attributes: Record<string, any> }[]);
