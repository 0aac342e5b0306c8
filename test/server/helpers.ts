// Shared fixtures for the companion-server tests: a config, wire events, and a server on 127.0.0.1:0.
import { randomUUID } from 'node:crypto';
import { createServer, type CreateServerOptions, type RelayServer } from '../../src/server/index.js';
import type { RelayConfigInput } from '../../src/server/config.js';
import type { RelayEvent } from '../../src/shared/wire.js';

export const PUBLIC_KEY = 'Ab12Cd';
export const PRIVATE_KEY = 'pk_relayTestSecret0123456789abcdef';
export const ADMIN_TOKEN = 'admin-token-for-tests-123';
export const SHOP = 'https://shop.example';

export const baseConfig: RelayConfigInput = {
  publicKey: PUBLIC_KEY,
  allowedOrigins: [SHOP, 'http://localhost:5173'],
  workflow: { default: 'client', events: { 'Placed Order': 'server', 'Viewed Product': 'client' } },
};

export function wireEvent(overrides: Partial<RelayEvent> = {}): RelayEvent {
  return {
    type: 'track',
    name: 'Placed Order',
    properties: { OrderId: 'o-1' },
    time: new Date().toISOString(),
    unique_id: randomUUID(),
    route: 'server',
    profile: { anonymous_id: 'anon-1', email: 'ada@example.com' },
    ...overrides,
  };
}

export async function startServer(config: Partial<RelayConfigInput> = {}, options: CreateServerOptions = {}): Promise<{ server: RelayServer; url: string }> {
  const server = await createServer({ ...baseConfig, ...config }, {
    dataDir: ':memory:', privateKey: PRIVATE_KEY, adminToken: ADMIN_TOKEN, klaviyoBaseUrl: 'http://127.0.0.1:9', forwardIntervalMs: 0,
    ...options,
  });
  const url = await server.listen({ port: 0, host: '127.0.0.1' });
  return { server, url };
}

export function postEvents(url: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(`${url}/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

export const batch = (events: unknown[]) => ({ public_key: PUBLIC_KEY, events });
