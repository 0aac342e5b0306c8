// The whole demo in one process: the Klaviyo sandbox, the companion server (with demo keys) and the storefront.
// `npm start` runs it through start.mjs; e2e tests start it on random ports.
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEmulator } from '../dist/node/emulator/index.js';
import { createServer } from '../dist/node/server/index.js';
import { loadConfigFile } from '../dist/node/server/config.js';
import { startStorefront } from './storefront-server.mjs';

export const DEMO_CONFIG = fileURLToPath(new URL('relay.config.json', import.meta.url));

/** Demo-only secrets: the sandbox accepts exactly these, and nothing here can reach real Klaviyo. */
export const demoSecrets = () => ({
  privateKey: `pk_demo_${randomBytes(16).toString('hex')}`,
  adminToken: `demo-admin-${randomBytes(12).toString('hex')}`,
});

/**
 * @param {{ports?: {store?: number, relay?: number, sandbox?: number}, host?: string, dataDir?: string,
 *   databaseUrl?: string, adminToken?: string, privateKey?: string, configFile?: string, logger?: boolean}} options
 *   Ports default to 0 (random); dataDir ':memory:' keeps nothing (tests); a postgres:// databaseUrl keeps the
 *   companion server's data there instead (the sandbox still snapshots into dataDir).
 */
export async function startDemoStack(options = {}) {
  const host = options.host ?? '127.0.0.1';
  const ports = options.ports ?? {};
  const secrets = { ...demoSecrets(), ...Object.fromEntries(Object.entries({ privateKey: options.privateKey, adminToken: options.adminToken }).filter(([, v]) => v)) };
  const dataDir = options.dataDir ?? ':memory:';
  const { config, dir } = loadConfigFile(options.configFile ?? DEMO_CONFIG);
  const started = [];
  const stopAll = async () => {
    for (const s of started.splice(0).reverse()) await s.close().catch((err) => console.error(`[demo] while stopping: ${err.message}`));
  };

  try {
    const storefront = await startStorefront({ port: ports.store, host });
    started.push(storefront);
    // The sandbox snapshots into the data folder (with PostgreSQL, the companion server does not create it).
    if (dataDir !== ':memory:') mkdirSync(dataDir, { recursive: true });
    const sandbox = await startEmulator({
      port: ports.sandbox ?? 0,
      host,
      privateKey: secrets.privateKey,
      publicKey: config.publicKey,
      snapshotFile: dataDir === ':memory:' ? undefined : join(dataDir, 'sandbox.json'),
    });
    started.push(sandbox);
    // The storefront may be opened as localhost or 127.0.0.1: allow both origins, on the port it really got.
    const allowedOrigins = [...new Set([...config.allowedOrigins, `http://localhost:${storefront.port}`, `http://127.0.0.1:${storefront.port}`])];
    const relay = await createServer(
      { ...config, allowedOrigins },
      { privateKey: secrets.privateKey, adminToken: secrets.adminToken, klaviyoBaseUrl: sandbox.url, dataDir, databaseUrl: options.databaseUrl ?? '', configDir: dir, logger: options.logger ?? false },
    );
    started.push(relay);
    const relayUrl = await relay.listen({ port: ports.relay ?? 0, host });
    const relayPort = Number(new URL(relayUrl).port);
    storefront.attach({ ports: { relay: relayPort, sandbox: sandbox.port }, publicKey: config.publicKey, store: relay.store });

    return {
      sandbox,
      relay,
      storefront,
      config: { ...config, allowedOrigins },
      adminToken: secrets.adminToken,
      urls: {
        storefront: `http://localhost:${storefront.port}`,
        relay: `http://localhost:${relayPort}`,
        sandbox: `http://localhost:${sandbox.port}`,
        console: `http://localhost:${relayPort}/admin/`,
      },
      close: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
