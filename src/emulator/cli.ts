// `klaviyo-relay emulator [--port 4010] [--host 127.0.0.1] [--private-key pk_…] [--public-key ABC123]
//  [--scopes LIST] [--no-rate-limits] [--snapshot FILE] [--job-delay MS] [--fault JSON]…`
import { parseArgs } from 'node:util';
import { startEmulator, type FaultRule } from './index.js';

const USAGE = `Usage: klaviyo-relay emulator [options]

Runs the local Klaviyo sandbox (Client API /client/*, server API /api/*, QA page at /).

Options:
  --port N            port to listen on (default 4010; 0 = random)
  --host HOST         interface to bind (default 127.0.0.1)
  --private-key KEY   the only private key accepted (default KLAVIYO_PRIVATE_KEY; unset = any well-formed key:
                      pk_ and at least 20 more characters)
  --public-key KEY    the only public key accepted (default KLAVIYO_PUBLIC_KEY; unset = any 6-char key)
  --scopes LIST       the private key's scopes, comma-separated (e.g. accounts:read,events:write); operations
                      needing another answer 403 permission_denied (default: a Full Access key)
  --no-rate-limits    do not enforce Klaviyo's per-endpoint rate limits
  --snapshot FILE     load state from FILE at start and keep saving it there
  --job-delay MS      time a bulk job takes to complete (default 1000)
  --fault JSON        a fault rule active from the start, repeatable, e.g.
                      '{"path":"/client/events","status":503,"ratio":0.2}'
  -h, --help          show this help`;

export async function runEmulator(args: string[]): Promise<number> {
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        'private-key': { type: 'string' },
        'public-key': { type: 'string' },
        scopes: { type: 'string' },
        'no-rate-limits': { type: 'boolean' },
        snapshot: { type: 'string' },
        'job-delay': { type: 'string' },
        fault: { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${USAGE}`);
    return 1;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const port = Number(values.port ?? process.env.PORT ?? 4010);
  const jobDelayMs = Number(values['job-delay'] ?? 1000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`--port must be an integer 0..65535, got '${values.port}'.`);
    return 1;
  }
  if (!Number.isFinite(jobDelayMs) || jobDelayMs < 0) {
    console.error(`--job-delay must be a number of milliseconds >= 0, got '${values['job-delay']}'.`);
    return 1;
  }
  let faults: FaultRule[];
  try {
    faults = ((values.fault as string[] | undefined) ?? []).map((text) => JSON.parse(text));
  } catch (err) {
    console.error(`--fault must be a JSON fault rule: ${(err as Error).message}`);
    return 1;
  }
  let emulator;
  try {
    emulator = await startEmulator({
      port,
      host: values.host as string | undefined,
      privateKey: values['private-key'] as string | undefined,
      publicKey: values['public-key'] as string | undefined,
      privateKeyScopes: values.scopes === undefined ? undefined : String(values.scopes).split(',').map((s) => s.trim()).filter(Boolean),
      rateLimits: !values['no-rate-limits'],
      snapshotFile: values.snapshot as string | undefined,
      jobDelayMs,
      faults,
    });
  } catch (err) {
    const { code, message } = err as Error & { code?: string };
    console.error(
      code === 'EADDRINUSE'
        ? `Could not start the Klaviyo sandbox: port ${port} on ${values.host ?? '127.0.0.1'} is already in use; choose another with --port, or stop the process using it`
        : `Could not start the Klaviyo sandbox: ${message}`,
    );
    return 1;
  }
  console.log(`Klaviyo sandbox listening on ${emulator.url}  (QA page: ${emulator.url}/ · admin: ${emulator.url}/__admin/state)`);
  const stop = async () => {
    await emulator.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return -1;
}
