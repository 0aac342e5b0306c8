import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { streamFile, detectFormat, resolveSourcePath, SourceError } from '../../src/server/audiences/file-source.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'relay-file-source-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const collect = async (path: string, format?: 'csv' | 'ndjson') => {
  const out = [];
  for await (const item of streamFile(path, format)) out.push(item);
  return out;
};

describe('file sources', () => {
  it('streams CSV rows keyed by the header, with BOM, quotes and blank lines handled', async () => {
    const path = join(dir, 'members.csv');
    writeFileSync(path, '\ufeffemail,first_name,"Loyalty Tier"\r\nada@x.co,Ada,"gold, plus"\r\n\r\nbob@x.co,Bob,silver\r\n');
    expect(await collect(path)).toEqual([
      { member: { email: 'ada@x.co', first_name: 'Ada', 'Loyalty Tier': 'gold, plus' } },
      { member: { email: 'bob@x.co', first_name: 'Bob', 'Loyalty Tier': 'silver' } },
    ]);
  });

  it('streams NDJSON objects and reports bad lines by number without stopping', async () => {
    const path = join(dir, 'members.ndjson');
    writeFileSync(path, '{"email":"ada@x.co","stats":{"orders":2}}\n\n{oops\n[1,2]\n{"email":"bob@x.co"}\n');
    expect(await collect(path)).toEqual([
      { member: { email: 'ada@x.co', stats: { orders: 2 } } },
      { error: expect.stringMatching(/^line 3: not valid JSON/) },
      { error: 'line 4: expected a JSON object' },
      { member: { email: 'bob@x.co' } },
    ]);
  });

  it('detects the format from the extension, or takes it from the definition', () => {
    expect(detectFormat('a.CSV')).toBe('csv');
    expect(detectFormat('a.jsonl')).toBe('ndjson');
    expect(detectFormat('a.txt', 'csv')).toBe('csv');
    expect(() => detectFormat('a.txt')).toThrow(/set source.format/);
  });

  it('resolves paths against the config directory and names a missing file', async () => {
    expect(resolveSourcePath('data/m.csv', '/etc/relay')).toBe('/etc/relay/data/m.csv');
    expect(resolveSourcePath('/abs/m.csv', '/etc/relay')).toBe('/abs/m.csv');
    await expect(collect(join(dir, 'missing.csv'))).rejects.toThrow(SourceError);
    await expect(collect(join(dir, 'missing.csv'))).rejects.toThrow(/source file not found: .*missing.csv/);
  });
});
