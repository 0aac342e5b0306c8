// File sources: CSV with a header row (csv-parse) or NDJSON (one JSON object per line), streamed so a file of a
// million members is never held in memory. `path` resolves against the config file's directory (pinned detail 8).
import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { isAbsolute, resolve, extname } from 'node:path';
import { parse } from 'csv-parse';
import type { SourceMember } from './mapping.js';

export type FileFormat = 'csv' | 'ndjson';

export class SourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SourceError';
  }
}

export const resolveSourcePath = (path: string, configDir: string) => (isAbsolute(path) ? path : resolve(configDir, path));

/** The format given, else from the extension (.csv; .ndjson/.jsonl/.json). */
export function detectFormat(path: string, format?: FileFormat): FileFormat {
  if (format) return format;
  const ext = extname(path).toLowerCase();
  if (ext === '.csv') return 'csv';
  if (ext === '.ndjson' || ext === '.jsonl' || ext === '.json') return 'ndjson';
  throw new SourceError(`cannot tell the format of ${path}: name it .csv or .ndjson, or set source.format`);
}

/** A malformed line does not stop the sync: it is reported with its line number and the stream goes on. */
export type FileItem = { member: SourceMember } | { error: string };

async function* csvMembers(path: string): AsyncGenerator<FileItem> {
  const parser = createReadStream(path).pipe(
    parse({ columns: true, bom: true, skip_empty_lines: true, trim: true, relax_column_count: true, skip_records_with_error: false }),
  );
  for await (const record of parser) yield { member: record as SourceMember };
}

async function* ndjsonMembers(path: string): AsyncGenerator<FileItem> {
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  let n = 0;
  for await (const line of lines) {
    n++;
    if (!line.trim()) continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      yield { error: `line ${n}: not valid JSON (${(err as Error).message})` };
      continue;
    }
    if (value && typeof value === 'object' && !Array.isArray(value)) yield { member: value as SourceMember };
    else yield { error: `line ${n}: expected a JSON object` };
  }
}

/** Stream the members of a file source. */
export async function* streamFile(path: string, format?: FileFormat): AsyncGenerator<FileItem> {
  try {
    await access(path);
  } catch {
    throw new SourceError(`source file not found: ${path}`);
  }
  yield* detectFormat(path, format) === 'csv' ? csvMembers(path) : ndjsonMembers(path);
}
