// The test harness's own promises: missing PostgreSQL binaries fail loudly with how to install them (never a
// silent skip), and Debian's versioned folders are found without PATH.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findPostgresBin } from '../../demo/postgres-cluster.mjs';

const root = mkdtempSync(join(tmpdir(), 'relay-pgbin-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const fakeBin = (dir: string) => {
  mkdirSync(dir, { recursive: true });
  for (const tool of ['initdb', 'pg_ctl']) writeFileSync(join(dir, tool), '');
  return dir;
};

describe('finding PostgreSQL', () => {
  it('fails with the install command when no initdb is anywhere', () => {
    expect(() => findPostgresBin({ env: { PATH: join(root, 'empty') }, debianRoot: join(root, 'none') })).toThrow(/apt-get install -y postgresql/);
    expect(() => findPostgresBin({ env: {}, debianRoot: join(root, 'none') })).toThrow(/TEST_DATABASE_URL/);
  });

  it('prefers PG_BIN, then PATH, then the newest Debian version', () => {
    const debian = join(root, 'debian');
    fakeBin(join(debian, '13', 'bin'));
    const newest = fakeBin(join(debian, '15', 'bin'));
    expect(findPostgresBin({ env: { PATH: '/nonexistent' }, debianRoot: debian })).toBe(newest);
    const onPath = fakeBin(join(root, 'path-bin'));
    expect(findPostgresBin({ env: { PATH: `/nonexistent:${onPath}` }, debianRoot: debian })).toBe(onPath);
    const explicit = fakeBin(join(root, 'explicit'));
    expect(findPostgresBin({ env: { PG_BIN: explicit, PATH: onPath }, debianRoot: debian })).toBe(explicit);
  });
});
