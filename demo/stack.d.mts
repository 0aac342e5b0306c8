// Types of stack.mjs, for the e2e tests that start the demo in-process.
import type { Emulator } from '../dist/node/emulator/index.js';
import type { RelayConfig, RelayServer } from '../dist/node/server/index.js';

export declare const DEMO_CONFIG: string;
export declare function demoSecrets(): { privateKey: string; adminToken: string };

export interface DemoStack {
  sandbox: Emulator;
  relay: RelayServer;
  storefront: { port: number; url: string; close(): Promise<void> };
  config: RelayConfig;
  adminToken: string;
  /** `console` is the companion server's operator console (`/admin/`). */
  urls: { storefront: string; relay: string; sandbox: string; console: string };
  close(): Promise<void>;
}

export declare function startDemoStack(options?: {
  ports?: { store?: number; relay?: number; sandbox?: number };
  host?: string;
  /** ':memory:' (the default) keeps nothing. */
  dataDir?: string;
  /** postgres://… keeps the companion server's data in PostgreSQL; '' or unset: SQLite in dataDir. */
  databaseUrl?: string;
  adminToken?: string;
  privateKey?: string;
  configFile?: string;
  logger?: boolean;
}): Promise<DemoStack>;
