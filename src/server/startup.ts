// What must hold before the server takes traffic, each failure told in one line naming the setting to change:
// a usable data folder owned by this process alone, an admin token worth its name, a free port.
import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** A start-up problem the operator fixes by changing one setting; `serve` prints its message as one line. */
export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartupError';
  }
}

/** Shorter tokens can be guessed or brute-forced over the network. */
export const MIN_ADMIN_TOKEN_LENGTH = 16;

export function checkAdminToken(token: string | undefined): void {
  if (token && token.length < MIN_ADMIN_TOKEN_LENGTH) {
    throw new StartupError(
      `RELAY_ADMIN_TOKEN is ${token.length} characters long; use at least ${MIN_ADMIN_TOKEN_LENGTH} (for example \`openssl rand -hex 24\`), or unset it to turn the admin API off`,
    );
  }
}

const dataDirProblem = (dir: string, what: string) => new StartupError(`RELAY_DATA_DIR ${dir} ${what}; set RELAY_DATA_DIR to a folder this process can write`);

/**
 * Create the data folder and its missing parents. Not `mkdirSync(…, {recursive: true})`: Node's recursive mkdir
 * never returns when the file system answers ENOENT under an existing parent (e.g. /proc/x).
 */
export function ensureDataDir(dir: string): void {
  const abs = resolve(dir);
  try {
    if (statSync(abs).isDirectory()) return;
    throw dataDirProblem(abs, 'is not a folder');
  } catch (err) {
    if (err instanceof StartupError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') throw dataDirProblem(abs, `cannot be read (${code})`);
  }
  const parent = dirname(abs);
  if (parent !== abs) ensureDataDir(parent);
  try {
    mkdirSync(abs);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' && statSync(abs).isDirectory()) return;
    throw dataDirProblem(abs, `cannot be created (${code})`);
  }
}

/** SQLite's answer when the folder or a file in it cannot be written. */
export function isUnwritable(err: unknown): boolean {
  const code = (err as { code?: string })?.code ?? '';
  return /^SQLITE_(CANTOPEN|READONLY|IOERR|PERM|FULL)/.test(code) || ['EACCES', 'EPERM', 'EROFS', 'ENOENT', 'ENOTDIR'].includes(code);
}

export function unwritableDataDir(dir: string, err: unknown): StartupError {
  const e = err as { code?: string; message?: string };
  return dataDirProblem(resolve(dir), `is not writable (${e.code ?? e.message})`);
}

/** A listen() failure as the setting to change. */
export function listenProblem(err: unknown, port: number, host: string): Error {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === 'EADDRINUSE') return new StartupError(`port ${port} on ${host} is already in use; choose another with --port or PORT, or stop the process using it`);
  if (code === 'EACCES') return new StartupError(`port ${port} on ${host} needs privileges this process lacks; choose a port above 1023 with --port or PORT`);
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') return new StartupError(`host ${host} is not an address of this machine; set --host or HOST (e.g. 0.0.0.0 or 127.0.0.1)`);
  return err as Error;
}
