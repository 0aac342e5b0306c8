// Run the built CLI (`bin/klaviyo-relay.mjs` → dist/node) as a child process, capturing everything it prints.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/klaviyo-relay.mjs', import.meta.url));

export interface RelayProcess {
  child: ChildProcess;
  /** stdout + stderr so far. */
  output(): string;
  /** The URL printed once the server listens. */
  url: Promise<string>;
  exited: Promise<number | null>;
}

export function spawnRelay(args: string[], env: Record<string, string | undefined> = {}): RelayProcess {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let resolveUrl: (url: string) => void;
  let rejectUrl: (err: Error) => void;
  const url = new Promise<string>((resolve, reject) => ((resolveUrl = resolve), (rejectUrl = reject)));
  url.catch(() => {}); // only awaited by tests that expect a running server
  const onData = (chunk: Buffer) => {
    out += chunk.toString();
    const match = /serving on (http:\/\/\S+)/.exec(out);
    if (match) resolveUrl(match[1]!);
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      rejectUrl(new Error(`klaviyo-relay exited (${code}) before listening:\n${out}`));
      resolve(code);
    }),
  );
  return { child, output: () => out, url, exited };
}

/** SIGKILL every relay still running and wait for each to exit (test clean-up). */
export async function killRelays(relays: RelayProcess[]): Promise<void> {
  for (const relay of relays) {
    if (relay.child.exitCode === null && relay.child.signalCode === null) {
      relay.child.kill('SIGKILL');
      await relay.exited;
    }
  }
}

