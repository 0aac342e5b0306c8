#!/usr/bin/env node
import { existsSync } from 'node:fs';

const cli = new URL('../dist/node/cli.js', import.meta.url);
if (!existsSync(cli)) {
  console.error('klaviyo-relay is not built yet: run `npm run build` first.');
  process.exit(1);
}
const { main } = await import(cli.href);
const code = await main(process.argv.slice(2));
// Long-running commands (serve, emulator) resolve to -1 and keep the process alive.
if (code >= 0) process.exitCode = code;
