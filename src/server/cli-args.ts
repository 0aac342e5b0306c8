// Command-line flags for every server command, parsed by node:util parseArgs, with its errors told plainly: a
// mistyped flag names the flag it most likely meant.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { closestName } from '../shared/zod-issues.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/** Why these arguments cannot be parsed, in one sentence; undefined for an error that is not about them. */
function describeArgsError(err: unknown, options: Options): string | undefined {
  const { code, message } = err as { code?: string; message: string };
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const flag = /'([^']+)'/.exec(message)?.[1] ?? message;
    const known = Object.entries(options).flatMap(([name, o]) => [`--${name}`, ...(o.short ? [`-${o.short}`] : [])]);
    const suggestion = closestName(flag, known);
    return `unknown option ${flag}${suggestion ? `; did you mean ${suggestion}?` : ''}`;
  }
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    const flag = /'(--?[\w-]+)/.exec(message)?.[1];
    return flag ? `${flag} needs a value` : message;
  }
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') return `unexpected argument ${/'([^']*)'/.exec(message)?.[1] ?? ''}`.trim();
  return undefined;
}

/**
 * Parse `args`; on a mistake print what is wrong and the usage to stderr and return undefined.
 * `--help`/`-h` is always understood.
 */
export function parseCommandArgs(
  args: string[],
  options: Options,
  usage: string,
  allowPositionals = false,
): { values: Record<string, string | boolean | undefined>; positionals: string[] } | undefined {
  const all: Options = { ...options, help: { type: 'boolean', short: 'h' } };
  try {
    const { values, positionals } = parseArgs({ args, options: all, allowPositionals, strict: true });
    return { values: values as Record<string, string | boolean | undefined>, positionals };
  } catch (err) {
    const problem = describeArgsError(err, all);
    if (problem === undefined) throw err;
    console.error(`${problem}\n\n${usage}`);
    return undefined;
  }
}
