// Hostile or broken audience sources cost only themselves: file paths outside the allowed folders, endless lines,
// rule values of the wrong shape, a run that must not hold the event loop, and run logs that add up after a resume.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createServer, loadConfigFile, type RelayServer, type RelayConfigInput } from '../../src/server/index.js';
import { boundedLines, MAX_RECORD_BYTES } from '../../src/server/audiences/file-source.js';
import { runLogStore } from '../../src/server/audiences/runs.js';
import { RULE_LIMITS, type RuleNode } from '../../src/server/audiences/definition.js';
import { parseDefinition } from '../../src/server/audiences/definitions.js';
import { createMapper } from '../../src/server/audiences/mapping.js';
import { createHarness, people, PRIVATE_KEY, type Harness } from './harness.js';
import { BACKENDS, openSqliteBackend } from './backends.js';

const TOKEN = 'admin-token-for-tests';

/** The sandbox harness of the running test: a fresh one per test of each describe that asks for it. */
let h: Harness;
function useHarness(options?: Parameters<typeof createHarness>[0]) {
  beforeEach(async () => {
    h = await createHarness(options);
  });
  afterEach(async () => {
    await h.close();
  });
}

describe('file source paths', () => {
  const root = mkdtempSync(join(tmpdir(), 'relay-paths-'));
  const configDir = join(root, 'config');
  let server: RelayServer;
  let url: string;

  beforeAll(async () => {
    mkdirSync(join(configDir, 'data'), { recursive: true });
    mkdirSync(join(root, 'exports'));
    mkdirSync(join(root, 'private'));
    writeFileSync(join(configDir, 'data', 'members.csv'), 'email\na@example.com\n');
    writeFileSync(join(root, 'exports', 'crm.csv'), 'email\nb@example.com\n');
    writeFileSync(join(root, 'private', 'secrets.csv'), 'email\nc@example.com\n');
    symlinkSync('/etc/passwd', join(configDir, 'passwd.csv'));
    symlinkSync(join(root, 'private'), join(configDir, 'data', 'linked'));
    symlinkSync(join(root, 'private', 'secrets.csv'), join(root, 'exports', 'escape.csv'));
    server = await createServer({ publicKey: 'ABC123', audienceFileRoots: ['../exports'] } as RelayConfigInput, {
      privateKey: PRIVATE_KEY, adminToken: TOKEN, klaviyoBaseUrl: 'http://127.0.0.1:9', dataDir: ':memory:', configDir, forwardIntervalMs: 0,
      audiences: { scheduler: false },
    });
    url = await server.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await server?.close();
    rmSync(root, { recursive: true, force: true });
  });

  const put = (name: string, body: Record<string, unknown>) =>
    fetch(`${url}/v1/admin/audiences/${name}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ list: { create: 'L' }, mapping: [{ from: 'email', to: 'email' }], ...body }),
    });
  const putPath = (path: string) => put('files', { source: { type: 'file', path } });

  for (const path of ['/etc/passwd', '../../proc/self/environ', '../private/secrets.csv', 'passwd.csv', 'data/linked/secrets.csv', '../exports/escape.csv']) {
    it(`PUT refuses ${path} with 400 naming the rule`, async () => {
      const res = await putPath(path);
      expect(res.status).toBe(400);
      const body = await res.json();
      expect(body.error).toMatch(/source\.path: .* outside the config file's folder .*audienceFileRoots/);
      expect(body.issues).toContainEqual({ field: 'source.path', message: expect.stringContaining('outside') });
    });
  }

  for (const path of ['data/members.csv', join(configDir, 'data', 'members.csv'), '../exports/crm.csv', 'data/not-yet-there.csv']) {
    it(`PUT accepts ${path}: inside the config folder or audienceFileRoots`, async () => {
      expect((await putPath(path)).status).toBe(200);
    });
  }

  describe('Source field suggestions (GET /v1/admin/file-source/fields)', () => {
    const fields = (path: string, format?: string) =>
      fetch(`${url}/v1/admin/file-source/fields?${new URLSearchParams({ path, ...(format ? { format } : {}) })}`, { headers: { authorization: `Bearer ${TOKEN}` } });

    beforeAll(() => {
      writeFileSync(join(configDir, 'data', 'customers.csv'), '\uFEFF\n email , "First, name",lifetime_value,,city\r\nada@example.com,Ada,1840.5,,London\n');
      writeFileSync(join(configDir, 'data', 'people.ndjson'), [
        'not json',
        JSON.stringify({ email: 'ada@example.com', location: { city: 'London' }, tags: ['vip'] }),
        '',
        JSON.stringify({ email: 'grace@example.com', phone_number: '+15005550006', location: { city: 'Arlington', zip: '22201' } }),
      ].join('\n'));
      writeFileSync(join(configDir, 'data', 'later.ndjson'), [...Array.from({ length: 25 }, (_, i) => JSON.stringify({ email: `p${i}@example.com` })), JSON.stringify({ beyond_the_sample: 1 })].join('\n'));
      writeFileSync(join(configDir, 'data', 'wide.csv'), `${'x'.repeat(MAX_RECORD_BYTES + 1)}\nnext,line\n`);
      writeFileSync(join(configDir, 'data', 'members.txt'), 'email\n');
    });

    it('offers a CSV header (BOM, blank first line, quotes and spaces handled; empty names left out)', async () => {
      const res = await fields('data/customers.csv');
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ path: 'data/customers.csv', fields: ['email', 'First, name', 'lifetime_value', 'city'] });
    });

    it('offers the keys of the first NDJSON lines, nested ones as dotted paths, and reads no further than the sample', async () => {
      expect((await (await fields('data/people.ndjson')).json()).fields).toEqual(['email', 'location.city', 'tags', 'phone_number', 'location.zip']);
      expect((await (await fields('data/later.ndjson')).json()).fields).toEqual(['email']);
      expect((await (await fields('../exports/crm.csv')).json()).fields).toEqual(['email']);
      expect((await (await fields('data/members.txt', 'csv')).json()).fields).toEqual(['email']);
    });

    for (const path of ['/etc/passwd', '../private/secrets.csv', 'passwd.csv', 'data/linked/secrets.csv', '../exports/escape.csv']) {
      it(`refuses ${path} with the message a save gets`, async () => {
        const res = await fields(path);
        expect(res.status).toBe(400);
        const body = await res.json();
        const saved = await (await putPath(path)).json();
        expect(body.issues).toEqual([{ field: 'source.path', message: expect.stringContaining('outside') }]);
        expect(saved.issues).toContainEqual(body.issues[0]);
      });
    }

    it('says what is wrong with a missing file, a header over 1 MiB, an unknown format or no path', async () => {
      const missing = await fields('data/not-yet-there.csv');
      expect(missing.status).toBe(404);
      expect(await missing.json()).toMatchObject({ issues: [{ field: 'source.path', message: expect.stringMatching(/^source file not found: .*not-yet-there\.csv$/) }] });
      const wide = await fields('data/wide.csv');
      expect(wide.status).toBe(400);
      expect((await wide.json()).error).toMatch(/header line of .*wide\.csv is longer than 1048576 bytes \(1 MiB\)/);
      expect((await (await fields('data/members.txt')).json()).error).toMatch(/cannot tell the format/);
      expect((await fields('data/customers.csv', 'xml')).status).toBe(400);
      expect((await fields(' ')).status).toBe(400);
      expect((await fetch(`${url}/v1/admin/file-source/fields?path=data/customers.csv`)).status).toBe(401);
    });
  });

  it('the config file is refused at load, naming the audience and the rule', () => {
    const file = join(configDir, 'relay.config.json');
    const audience = (path: string) => ({ name: path.replace(/\W/g, '') || 'x', source: { type: 'file', path }, list: { create: 'CRM' } });
    writeFileSync(file, JSON.stringify({ publicKey: 'ABC123', audiences: [audience('data/members.csv'), audience('/etc/passwd')] }));
    expect(() => loadConfigFile(file)).toThrow(/audiences\[1\]\.source\.path: \/etc\/passwd resolves to \/etc\/passwd, outside the config file's folder/);
    writeFileSync(file, JSON.stringify({ publicKey: 'ABC123', audienceFileRoots: ['/etc'], audiences: [audience('/etc/passwd')] }));
    expect(loadConfigFile(file).config.audiences).toHaveLength(1);
  });

  it('createServer refuses such a config too', async () => {
    const config = { publicKey: 'ABC123', audiences: [{ name: 'x', source: { type: 'file', path: '/etc/passwd' }, list: { create: 'X' } }] } as RelayConfigInput;
    await expect(createServer(config, { dataDir: ':memory:', configDir })).rejects.toThrow(/audiences\[0\]\.source\.path: .*outside/);
  });

  describe('rule values of the wrong shape', () => {
    const cases: [string, unknown, RegExp][] = [
      ['an array in a trait eq', { trait: 'plan', eq: [1, 2] }, /source\.rules\.eq: must be one string, number or boolean, not an array/],
      ['an object in a nested trait contains', { all: [{ trait: 'plan', exists: true }, { trait: 'tags', contains: { vip: true } }] }, /source\.rules\.all\[1\]\.contains: must be one string, number or boolean, not a object/],
      ['an object in an event where eq', { event: 'Viewed Product', where: { Category: { eq: { a: 1 } } } }, /source\.rules\.where\.Category\.eq: must be one/],
      ['null in eq', { not: { trait: 'plan', eq: null } }, /source\.rules\.not\.eq: .*null \(use "exists": false\)/],
    ];
    for (const [what, rules, error] of cases) {
      it(`PUT refuses ${what} with 400 naming the rule`, async () => {
        const res = await put('rules', { source: { type: 'segment', rules } });
        expect(res.status).toBe(400);
        expect((await res.json()).error).toMatch(error);
      });
    }

    it('PUT refuses a rule tree nested thousands deep with 400, not a 500 from a stack overflow', async () => {
      const rules = JSON.parse(`${'{"not":'.repeat(3000)}{"trait":"plan","eq":"gold"}${'}'.repeat(3000)}`);
      const res = await put('rules', { source: { type: 'segment', rules } });
      expect(res.status).toBe(400);
      expect((await res.json()).error).toMatch(/source\.rules: rules are nested more than 16 levels deep/);
    });

    it('PUT refuses 20,000 conditions (SQLite would refuse the query at every run)', async () => {
      const rules = { any: Array.from({ length: 20_000 }, (_, i) => ({ trait: 'plan', eq: `v${i}` })) };
      const res = await put('rules', { source: { type: 'segment', rules } });
      expect(res.status).toBe(400);
      expect((await res.json()).error).toMatch(/source\.rules: rules hold more than 200 conditions/);
    });

    it('the largest rule tree allowed runs on SQLite and on PostgreSQL', async () => {
      const condition = (i: number) => ({ event: 'Viewed Product', count: { gte: 1, lte: 9 }, within: '7d', where: { Price: { gt: i, lt: 1000 }, Tags: { contains: 'x' }, Sku: { eq: `s${i}` } } });
      let rules: RuleNode = { any: Array.from({ length: RULE_LIMITS.conditions - 1 }, (_, i) => condition(i)) };
      for (let depth = 2; depth < RULE_LIMITS.depth; depth++) rules = depth % 2 ? { not: rules } : { all: [rules] };
      rules = { all: [rules, { trait: 'plan', eq: 'gold' }] };
      const definition = parseDefinition({ name: 'big', source: { type: 'segment', rules }, list: { create: 'Big' } });
      for (const { open } of BACKENDS) {
        const backend = await open();
        try {
          const members = [];
          for await (const m of backend.store.segment((definition.source as { rules: RuleNode }).rules, Date.now())) members.push(m);
          expect(members).toEqual([]);
        } finally {
          await backend.close();
        }
      }
    });

    it('PUT accepts scalars', async () => {
      const rules = { all: [{ trait: 'plan', eq: 'gold' }, { trait: 'orders', eq: 5 }, { trait: 'vip', eq: true }, { event: 'Viewed Product', where: { Tags: { contains: 'Shoes' } } }] };
      expect((await put('rules', { source: { type: 'segment', rules } })).status).toBe(200);
    });
  });

  it('a refreshInterval of zero is refused (the scheduler would run the audience back to back forever)', async () => {
    const res = await put('zero', { source: { type: 'file', path: 'data/members.csv' }, refreshInterval: '0s' });
    expect(res.status).toBe(400);
    expect((await res.json()).error).toMatch(/refreshInterval: must be longer than 0/);
  });

  it('an unknown key names the one meant', async () => {
    const res = await put('typo', { source: { type: 'file', path: 'data/members.csv' }, allowAnonymus: true });
    expect(res.status).toBe(400);
    expect((await res.json()).error).toMatch(/Unrecognized key "allowAnonymus": did you mean "allowAnonymous"\?/);
  });
});

describe('prototype keys in a source or a mapping', () => {
  const def = (mapping: unknown[]) => ({ name: 'a', source: { type: 'file', path: 'x.csv' }, list: { id: 'L1' }, mapping });

  it('a mapping reads only fields the member itself has, never what every object inherits', () => {
    const map = createMapper(parseDefinition(def([{ from: 'email', to: 'email' }, { from: 'constructor', to: 'properties.c' }, { from: 'a.__proto__', to: 'properties.p' }])));
    const outcome = map(JSON.parse('{"email":"ada@example.com","a":{}}'));
    expect(outcome).toMatchObject({ kind: 'ok', attributes: { email: 'ada@example.com' } });
    expect((outcome as { attributes: Record<string, unknown> }).attributes.properties).toBeUndefined();
  });

  it('a mapping target named like a prototype key is refused, naming it', () => {
    expect(() => parseDefinition(def([{ from: 'x', to: 'properties.__proto__' }]))).toThrow(/mapping\[0\]\.to: cannot name a custom property __proto__/);
  });
});

describe('endless lines', () => {
  it('reports a line as too long as soon as it passes 1 MiB, without waiting for its end, then reads on', async () => {
    let produced = 0;
    let producedAtError = -1;
    const chunk = Buffer.alloc(64 * 1024, 'x');
    // 64 MiB without a newline, then a good line.
    async function* source() {
      for (let i = 0; i < 1024; i++) {
        produced += chunk.length;
        yield chunk;
      }
      yield Buffer.from('\n{"email":"a@example.com"}\n');
    }
    const items = [];
    for await (const item of boundedLines(Readable.from(source(), { objectMode: false, highWaterMark: 64 * 1024 }), MAX_RECORD_BYTES)) {
      if ('tooLong' in item && producedAtError < 0) producedAtError = produced;
      items.push(item);
    }
    expect(items).toEqual([{ n: 1, tooLong: true }, { n: 2, line: '{"email":"a@example.com"}' }]);
    // Refused while the stream was a little past the cap (stream read-ahead aside), not at the end of 64 MiB.
    expect(producedAtError).toBeGreaterThan(MAX_RECORD_BYTES);
    expect(producedAtError).toBeLessThan(MAX_RECORD_BYTES + 512 * 1024);
  });

  it('splits lines exactly: CRLF, a cap reached exactly, a last line without newline, chunks cut anywhere', async () => {
    const text = `a\r\n${'y'.repeat(8)}\n\n${'z'.repeat(9)}\nlast`;
    const pieces = text.match(/.{1,3}/gs)!.map((s) => Buffer.from(s));
    const items = [];
    for await (const item of boundedLines(Readable.from(pieces), 8)) items.push(item);
    expect(items).toEqual([{ n: 1, line: 'a\r' }, { n: 2, line: 'y'.repeat(8) }, { n: 3, line: '' }, { n: 4, tooLong: true }, { n: 5, line: 'last' }]);
  });

  describe('in a run', () => {
    useHarness();
    const def = (path: string, extra: Record<string, unknown> = {}) => ({
      name: 'long-lines', source: { type: 'file', path }, list: { create: 'Long lines' }, mapping: [{ from: 'email', to: 'email' }], ...extra,
    });

    it('an NDJSON line over 1 MiB is refused as too long; the rest is synced', async () => {
      writeFileSync(join(h.dir, 'm.ndjson'), `{"email":"a@example.com"}\n{"email":"${'x'.repeat(3 * MAX_RECORD_BYTES)}@example.com"}\n{"email":"b@example.com"}\n`);
      const log = await h.sync(def('m.ndjson'));
      expect(log.status).toBe('success');
      expect(log.counts).toMatchObject({ read: 2, invalid: 1, imported: 2 });
      expect(log.errors).toContainEqual({ stage: 'source', detail: 'line 2 is longer than 1048576 bytes (1 MiB); it was skipped' });
    });

    it('a CSV record over 1 MiB is refused as too long; the rest is synced', async () => {
      writeFileSync(join(h.dir, 'm.csv'), `email,note\na@example.com,short\nb@example.com,${'x'.repeat(2 * MAX_RECORD_BYTES)}\nc@example.com,short\n`);
      const log = await h.sync(def('m.csv'));
      expect(log.status).toBe('success');
      expect(log.counts).toMatchObject({ read: 2, invalid: 1, imported: 2 });
      expect(log.errors).toContainEqual({ stage: 'source', detail: expect.stringMatching(/^line 3 is longer than 1048576 bytes \(1 MiB\); it was skipped$/) });
    });

    it('a CSV record with a stray quote is skipped as invalid, naming its line; the records around it are synced', async () => {
      writeFileSync(join(h.dir, 'quote.csv'), 'email,first_name\na@example.com,Ann\nb"ad@example.com,Bob\nc@example.com,Cy\n');
      const log = await h.sync(def('quote.csv'));
      expect(log.status).toBe('success');
      expect(log.counts).toMatchObject({ read: 2, invalid: 1, imported: 2 });
      expect(log.errors).toContainEqual({ stage: 'source', detail: expect.stringMatching(/^line 3: Invalid Opening Quote: .*; the record was skipped$/) });
    });

    it('a CSV quote never closed stops the run: it swallows every record after it', async () => {
      writeFileSync(join(h.dir, 'open.csv'), 'email,first_name\na@example.com,Ann\n"b@example.com,Bob\nc@example.com,Cy\n');
      const log = await h.sync(def('open.csv'));
      expect(log.status).toBe('failed');
      expect(log.error).toMatch(/Quote Not Closed/);
    });

    it('a CSV header over 1 MiB stops the run, naming it, instead of the next line passing for the header', async () => {
      writeFileSync(join(h.dir, 'wide.csv'), `email,${'n'.repeat(2 * MAX_RECORD_BYTES)}\na@example.com,short\nb@example.com,short\n`);
      const log = await h.sync(def('wide.csv'));
      expect(log.status).toBe('failed');
      expect(log.error).toMatch(/the header line \(line 1\) of .*wide\.csv is longer than 1048576 bytes \(1 MiB\)/);
      expect(h.calls('bulk_import_profiles')).toHaveLength(0);
      expect(h.calls('create_list')).toHaveLength(0); // read before anything reaches Klaviyo
    });

    it('a quoted CSV field of many short lines adding up past 1 MiB stops the run cleanly, naming the limit', async () => {
      const field = Array.from({ length: 30_000 }, () => 'y'.repeat(40)).join('\n');
      writeFileSync(join(h.dir, 'multi.csv'), `email,note\na@example.com,"${field}"\nb@example.com,short\n`);
      const log = await h.sync(def('multi.csv'));
      expect(log.status).toBe('failed');
      expect(log.error).toMatch(/the CSV record ending at line \d+ is longer than 1048576 bytes/);
    });

    it('a file that is gone at run time fails the run before a Klaviyo list is created', async () => {
      const log = await h.sync(def('gone.csv'));
      expect(log.status).toBe('failed');
      expect(log.error).toMatch(/source file not found/);
      expect(h.calls('create_list')).toHaveLength(0);
      expect(log.list_id).toBeNull();
    });

    it('a device such as /dev/zero fails the run cleanly, even inside audienceFileRoots', async () => {
      h.env.fileRoots = ['/dev'];
      const log = await h.sync(def('/dev/zero', { source: { type: 'file', path: '/dev/zero', format: 'ndjson' } }));
      expect(log.status).toBe('failed');
      expect(log.error).toMatch(/\/dev\/zero is not a regular file/);
    });

    it('a file source outside the allowed folders fails at run time too (a symlink swapped after PUT)', async () => {
      symlinkSync('/etc/passwd', join(h.dir, 'swapped.csv'));
      const log = await h.sync(def('swapped.csv'));
      expect(log.status).toBe('failed');
      expect(log.error).toMatch(/source\.path swapped\.csv resolves to \/etc\/passwd, outside the config file's folder/);
      expect(h.calls('bulk_import_profiles')).toHaveLength(0);
      expect(h.calls('create_list')).toHaveLength(0);
    });
  });
});

describe('a run shares the event loop', () => {
  // SQLite: the embedded store answers without I/O, so only the run's own yields let other work in.
  let db: Awaited<ReturnType<typeof openSqliteBackend>>['db'];
  beforeEach(async () => {
    const backend = await openSqliteBackend();
    db = backend.db;
    h = await createHarness({ backend });
    const close = h.close;
    h.close = async () => {
      await close();
      await backend.close();
    };
  });
  afterEach(async () => {
    await h.close();
  });

  it('a segment read without I/O yields between batches, so intake is answered during the run', async () => {
    const insert = db.prepare(`INSERT INTO profiles (email, first_seen, last_seen, updated_at) VALUES (?, 0, 0, 0)`);
    db.transaction(() => {
      for (let i = 0; i < 5000; i++) insert.run(`p${i}@example.com`);
    })();
    const def = { name: 'everyone', source: { type: 'segment', rules: { trait: 'email', exists: true } }, list: { create: 'Everyone' }, mapping: [{ from: 'email', to: 'email' }] };
    // Count the pages of the segment the run has read (1,000 members each), as the real statement runs them.
    let pagesRead = 0;
    const prepare = db.prepare.bind(db);
    db.prepare = ((sql: string) => {
      const statement = prepare(sql);
      if (!sql.includes('FROM profiles p WHERE p.id > ?')) return statement;
      return new Proxy(statement, {
        get: (target, key) => (key === 'all' ? (...args: unknown[]) => (pagesRead++, target.all(...args)) : Reflect.get(target, key, target)),
      });
    }) as typeof db.prepare;
    // Other work's turns that came while the run was between its first and last page: none if the run held the
    // event loop from the first member to the last (a dry run waits on no I/O once the list is looked up).
    let turnsInside = 0;
    let running = true;
    const tick = () => {
      if (pagesRead >= 1 && pagesRead < 5) turnsInside++;
      if (running) setImmediate(tick);
    };
    setImmediate(tick);
    const result = await h.dry(def);
    running = false;
    expect(result.counts.imported).toBe(5000);
    expect(pagesRead).toBe(6);
    expect(turnsInside).toBeGreaterThanOrEqual(4 * (1000 / 500));
  });
});

describe('run log rows', () => {
  useHarness({ tuning: { maxProfilesPerJob: 50 } });

  it('name every submitted job the moment it is submitted, so a killed process leaves them all in its row', async () => {
    h.writeCsv('members.csv', people(0, 200));
    const missing: string[] = [];
    const rows: Promise<void>[] = [];
    h.env.tuning!.onEvent = (e) => {
      if (e.type !== 'job-submitted') return;
      rows.push(runLogStore(h.env.store).list('jobs', 1).then(([row]) => void (row!.job_ids.includes(e.jobId) || missing.push(e.jobId))));
    };
    const log = await h.sync({ name: 'jobs', source: { type: 'file', path: 'members.csv' }, list: { create: 'Jobs' }, mapping: [{ from: 'email', to: 'email' }] });
    await Promise.all(rows);
    expect(log.job_ids).toHaveLength(4);
    expect(missing).toEqual([]);
  });
});
