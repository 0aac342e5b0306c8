// `klaviyo-relay <command>`: one entry point that hands each command to the half that owns it.
const USAGE = `Usage: klaviyo-relay <command> [options]   (klaviyo-relay <command> --help for more)

Commands:
  serve [--config FILE] [--port N] [--host ADDRESS]   run the companion server
  sync <name> [--dry-run] [--force] [--config FILE]  run one audience sync now (--force: even when disabled)
                                                     exit 0 success, 2 partial, 1 failed
  logs <name> [--json] [--limit N] [--config FILE]   print an audience's sync runs, newest first
  emulator [--port 4010]                             run the local Klaviyo sandbox
  doctor [--config FILE]                             check the keys, the account, audience lists and the store

--config defaults to ./relay.config.json.
Secrets come from the environment only: KLAVIYO_PRIVATE_KEY, RELAY_ADMIN_TOKEN (at least 16 characters).
Other env: KLAVIYO_BASE_URL, PORT, HOST, RELAY_DATA_DIR (default ./.klaviyo-relay), RELAY_TRUST_PROXY,
LOG_LEVEL (info by default; debug also logs every request), DATABASE_URL (postgres://… to run several instances
on one database), RELAY_FORWARD_LEASE_MS, RELAY_AUDIENCE_LEASE_MS.`;

export async function main(argv: string[]): Promise<number> {
  try {
    return await dispatch(argv);
  } catch (err) {
    // A bad setting (an environment variable such as RELAY_AUDIENCE_LEASE_MS) is fixed by changing it: one line, no stack.
    if (err instanceof (await import('./server/config.js')).ConfigError) {
      console.error(err.message);
      return 1;
    }
    throw err;
  }
}

async function dispatch(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  switch (command) {
    case 'serve':
      return (await import('./server/cli.js')).runServe(args);
    case 'sync':
      return (await import('./server/audiences/cli.js')).runSync(args);
    case 'logs':
      return (await import('./server/audiences/cli.js')).runLogs(args);
    case 'doctor':
      return (await import('./server/doctor.js')).runDoctor(args);
    case 'emulator':
      return (await import('./emulator/cli.js')).runEmulator(args);
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      console.log(USAGE);
      return command ? 0 : 1;
    default:
      console.error(`Unknown command "${command}".\n\n${USAGE}`);
      return 1;
  }
}
