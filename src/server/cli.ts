// `klaviyo-relay serve`: load and validate the config file, start the server, close cleanly on SIGTERM/SIGINT.
import { parseCommandArgs } from './cli-args.js';
import { ConfigError, loadConfigFile, readEnv } from './config.js';
import { createServer, DEFAULT_PORT, type RelayServer } from './index.js';
import { StartupError } from './startup.js';

const USAGE = `Usage: klaviyo-relay serve [--config FILE] [--port N] [--host ADDRESS]

Options:
  --config FILE     the relay config (default ./relay.config.json)
  --port N          port to listen on (default PORT, else ${DEFAULT_PORT}); 0 picks a free one
  --host ADDRESS    address to bind (default HOST, else 0.0.0.0: every interface)

Env: KLAVIYO_PRIVATE_KEY, RELAY_ADMIN_TOKEN (at least 16 characters; unset turns the admin API off),
KLAVIYO_BASE_URL, PORT, HOST, RELAY_DATA_DIR (default ./.klaviyo-relay), RELAY_TRUST_PROXY,
LOG_LEVEL (info; debug also logs every request), DATABASE_URL (postgres://…: keep everything in PostgreSQL,
shared by any number of serve instances; nothing is written to RELAY_DATA_DIR), RELAY_FORWARD_LEASE_MS
(default 30000: how long a killed instance's outbox claims wait before another instance takes them over),
RELAY_AUDIENCE_LEASE_MS (default 60000: how long a dead process's audience run holds before the next run resumes it).`;

function parsePort(value: string | undefined, source: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`${source} must be a port number 0-65535, got "${value}"`);
  return port;
}

export async function runServe(args: string[]): Promise<number> {
  const parsed = parseCommandArgs(args, { config: { type: 'string', default: './relay.config.json' }, port: { type: 'string' }, host: { type: 'string' } }, USAGE);
  if (!parsed) return 1;
  const flags = parsed.values;
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }

  let env: ReturnType<typeof readEnv>;
  let server: RelayServer | undefined;
  let url: string;
  let configPath: string;
  try {
    env = readEnv();
    const port = parsePort(flags.port as string | undefined, '--port') ?? parsePort(process.env.PORT, 'PORT') ?? DEFAULT_PORT;
    const loaded = loadConfigFile(flags.config as string);
    configPath = loaded.path;
    server = await createServer(loaded.config, { configDir: loaded.dir, logger: true });
    url = await server.listen({ port, host: (flags.host as string | undefined) ?? env.host ?? '0.0.0.0' });
  } catch (err) {
    await server?.close();
    // Each is fixed by changing one setting, and its message names it: one line, no stack.
    if (err instanceof ConfigError || err instanceof StartupError) {
      console.error(err.message);
      return 1;
    }
    throw err;
  }
  const running = server;
  const shutdown = (signal: string) => {
    console.log(`${signal}: closing`);
    running.close().then(
      () => process.exit(0),
      (err) => {
        console.error(`error while closing: ${(err as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
  console.log(`klaviyo-relay serving on ${url} (config ${configPath}, data ${running.storeLocation})`);

  return -1;
}
