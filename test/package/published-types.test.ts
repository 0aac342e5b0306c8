// The published declaration files must type-check in a consumer's project that installed only `klaviyo-relay`:
// every package a .d.ts in dist/ imports has to bring its types with it through `dependencies` (its own, or an
// @types package listed there), or a strict consumer (`skipLibCheck: false`) fails on `Could not find a
// declaration file for module …`. Reads the built dist/ (`npm run build` first).
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
const requireFromRoot = createRequire(join(root, 'package.json'));

function declarationFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return declarationFiles(path);
    return entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Bare module specifiers (not relative, not node: builtins) each published .d.ts imports. */
function importedPackages(): Map<string, string> {
  const found = new Map<string, string>();
  for (const file of declarationFiles(join(root, 'dist'))) {
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(/(?:from\s+|import\(\s*)['"]([^'"]+)['"]/g)) {
      const spec = match[1]!;
      if (spec.startsWith('.') || spec.startsWith('node:')) continue;
      const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
      if (!found.has(name)) found.set(name, file.slice(root.length));
    }
  }
  return found;
}

function shipsOwnTypes(name: string): boolean {
  const manifest = JSON.parse(readFileSync(requireFromRoot.resolve(`${name}/package.json`), 'utf8')) as Record<string, unknown>;
  return Boolean(manifest.types || manifest.typings || JSON.stringify(manifest.exports ?? {}).includes('"types"'));
}

describe('published declaration files', () => {
  const imported = importedPackages();

  it('import at least the server’s runtime packages (the scan sees the built dist/)', () => {
    expect([...imported.keys()]).toEqual(expect.arrayContaining(['fastify', 'zod']));
  });

  it('import only packages whose types a consumer gets by installing klaviyo-relay', () => {
    const untyped = [...imported]
      .filter(([name]) => {
        if (!(name in pkg.dependencies)) return true;
        return !shipsOwnTypes(name) && !(`@types/${name}` in pkg.dependencies);
      })
      .map(([name, file]) => `${name} (imported by ${file})`);
    expect(untyped).toEqual([]);
  });
});
