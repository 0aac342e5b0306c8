// `klaviyo-relay serve`: load and validate the config file, start the server, close cleanly on SIGTERM/SIGINT.
import { parseArgs } from 'node:util';
import { ConfigError, loadConfigFile, readEnv } from './config.js';
import { createServer, DEFAULT_PORT } from './index.js';

const USAGE = `Usage: klaviyo-relay serve [--config relay.config.json] [--port 8787] [--host 0.0.0.0]

Env: KLAVIYO_PRIVATE_KEY, RELAY_ADMIN_TOKEN, KLAVIYO_BASE_URL, PORT, HOST, RELAY_DATA_DIR, LOG_LEVEL.`;

function parsePort(value: string | undefined, source: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`${source} must be a port number 0-65535, got "${value}"`);
  return port;
}

export async function runServe(args: string[]): Promise<number> {
  let flags;
  try {
    flags = parseArgs({
      args,
      options: {
        config: { type: 'string', default: './relay.config.json' },
        port: { type: 'string' },
        host: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${USAGE}`);
    return 1;
  }
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }

  const env = readEnv();
  let port: number;
  let loaded;
  try {
    port = parsePort(flags.port, '--port') ?? parsePort(process.env.PORT, 'PORT') ?? DEFAULT_PORT;
    loaded = loadConfigFile(flags.config!);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(err.message);
    return 1;
  }

  const server = await createServer(loaded.config, { configDir: loaded.dir, logger: true });
  const url = await server.listen({ port, host: flags.host ?? env.host ?? '0.0.0.0' });
  console.log(`klaviyo-relay serving on ${url} (config ${loaded.path}, data ${env.dataDir})`);
  if (!env.privateKey) console.warn('KLAVIYO_PRIVATE_KEY is unset: server-routed events are stored but not forwarded.');

  const shutdown = (signal: string) => {
    console.log(`${signal}: closing`);
    server.close().then(
      () => process.exit(0),
      (err) => {
        console.error(`error while closing: ${(err as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
  return -1;
}
