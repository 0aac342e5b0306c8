// The user documentation (README.md, docs/*.md, demo/README.md) against the code it describes: links that lead
// somewhere (ARCHITECTURE.md's too), environment variables the code reads, the tag-manager stub as the file ships
// it, and no pointers to the project's private contract.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string) => readFileSync(join(root, path), 'utf8');

const userDocs = ['README.md', 'demo/README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

function codeFiles(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return codeFiles(path);
    return /\.(ts|mts|mjs|js)$/.test(entry.name) ? [path] : [];
  });
}

describe('user documentation', () => {
  it('every relative link points at a file or folder of the repository', () => {
    const broken = [...userDocs, 'ARCHITECTURE.md'].flatMap((doc) =>
      [...read(doc).matchAll(/\]\(([^)\s]+)\)/g)]
        .map((m) => m[1]!.split('#')[0]!)
        .filter((target) => target && !/^[a-z]+:/.test(target))
        .filter((target) => !existsSync(join(root, dirname(doc), target)))
        .map((target) => `${doc} → ${target}`),
    );
    expect(broken).toEqual([]);
  });

  it('every environment variable it names is read by the code', () => {
    // CREATEDB is a PostgreSQL role attribute, not a variable.
    const named = new Set(userDocs.flatMap((doc) => [...read(doc).matchAll(/`([A-Z][A-Z0-9_]{3,})(?:=[^`]*)?`/g)].map((m) => m[1]!)));
    named.delete('CREATEDB');
    expect([...named]).toEqual(expect.arrayContaining(['KLAVIYO_PRIVATE_KEY', 'DATABASE_URL', 'STORE_PORT']));
    const code = ['src', 'demo', 'e2e', 'test/support', 'bin'].flatMap(codeFiles).map(read).join('\n');
    const unread = [...named].filter((name) => !new RegExp(`env(?:\\.${name}\\b|\\[['"]${name}['"]\\])|['"]${name}['"]`).test(code));
    expect(unread).toEqual([]);
  });

  it('README.md and docs/snippet.md carry the tag-manager stub exactly as src/browser/stub.html ships it', () => {
    const stub = read('src/browser/stub.html');
    const script = stub.slice(stub.indexOf('<script>'), stub.indexOf('</script>') + '</script>'.length);
    expect(script.length).toBeGreaterThan(100);
    for (const doc of ['README.md', 'docs/snippet.md']) expect(read(doc), doc).toContain(script);
  });

  it('states the stub’s size within 10 % of the script it is', () => {
    const stub = read('src/browser/stub.html');
    const bytes = stub.slice(stub.indexOf('<script>') + '<script>'.length, stub.indexOf('</script>')).replace(/\n/g, '').length;
    for (const doc of ['README.md', 'docs/snippet.md']) {
      const stated = /(?:~|about )(\d+) bytes of script/.exec(read(doc))?.[1];
      expect(stated, doc).toBeDefined();
      expect(Math.abs(Number(stated) - bytes) / bytes, `${doc} says ${stated}, the script is ${bytes}`).toBeLessThan(0.1);
    }
  });

  it('never points at the project’s private contract (SPEC, ../shared)', () => {
    const pointers = [...userDocs, 'ARCHITECTURE.md', 'openapi/README.md', 'src/browser/README.md', 'src/emulator/README.md'].flatMap((doc) =>
      read(doc)
        .split('\n')
        .filter((line) => /\.\.\/shared|\bSPEC\b(?!_)|pinned detail/.test(line.replace(/KLAVIYO_OPENAPI_SPEC/g, '')))
        .map((line) => `${relative('.', doc)}: ${line.trim()}`),
    );
    expect(pointers).toEqual([]);
  });
});
