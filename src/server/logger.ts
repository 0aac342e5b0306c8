// Log output for the server: pino (through Fastify) writing to a stream that blanks every secret, so the
// private key or admin token can never reach a log line even if some error message carried it.
import type { Writable } from 'node:stream';

export const REDACTED = '[redacted]';

/** A minimal pino destination: each line has every secret replaced before it is written. */
export function redactingStream(secrets: (string | undefined)[], out: Pick<Writable, 'write'> = process.stdout) {
  // Every secret, however short: a short one is the easiest to guess, and start-up refuses short admin tokens anyway.
  const hidden = secrets.filter((s): s is string => typeof s === 'string' && s.length > 0);
  return {
    write(line: string) {
      for (const secret of hidden) if (line.includes(secret)) line = line.split(secret).join(REDACTED);
      out.write(line);
    },
  };
}
