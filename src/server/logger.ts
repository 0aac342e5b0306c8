// Log output for the server: pino (through Fastify) writing to a stream that blanks every secret, so the
// private key or admin token can never reach a log line even if some error message carried it.
import type { Writable } from 'node:stream';

export const REDACTED = '[redacted]';

/** A minimal pino destination: each line has every secret replaced before it is written. */
export function redactingStream(secrets: (string | undefined)[], out: Pick<Writable, 'write'> = process.stdout) {
  const hidden = secrets.filter((s): s is string => typeof s === 'string' && s.length >= 4);
  return {
    write(line: string) {
      for (const secret of hidden) if (line.includes(secret)) line = line.split(secret).join(REDACTED);
      out.write(line);
    },
  };
}

/** Replace every secret in a string (for messages that leave the process another way, e.g. console). */
export function redact(text: string, secrets: (string | undefined)[]): string {
  for (const secret of secrets) if (secret && secret.length >= 4) text = text.split(secret).join(REDACTED);
  return text;
}
