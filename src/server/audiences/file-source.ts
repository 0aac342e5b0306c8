// File sources: CSV with a header row (csv-parse) or NDJSON (one JSON object per line), streamed so a file of a
// million members is never held in memory. `path` resolves against the config file's directory and must stay
// inside it (or inside a folder the config lists in audienceFileRoots), symlinks resolved: an admin token must
// not turn into a way to read /etc/passwd through dry-run samples or per-line errors.
import { createReadStream, realpathSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname, extname, isAbsolute, join, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { parse } from 'csv-parse';
import { parse as parseCsvText } from 'csv-parse/sync';
import type { SourceMember } from './mapping.js';

export type FileFormat = 'csv' | 'ndjson';

/** The longest source line or CSV record read; a longer one is refused without being held in memory. */
export const MAX_RECORD_BYTES = 1_048_576;

export class SourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SourceError';
  }
}

export class SourceFileNotFound extends SourceError {}

export const resolveSourcePath = (path: string, configDir: string) => (isAbsolute(path) ? path : resolve(configDir, path));

/** Where file sources may be read: the config file's folder, plus the folders of `audienceFileRoots`. */
export interface SourceRoots {
  configDir: string;
  /** Extra folders, absolute or relative to configDir. */
  fileRoots?: string[];
}

/** The real path (symlinks resolved) of `path`, or of its nearest existing ancestor joined with the rest. */
function realPath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    const parent = dirname(path);
    return parent === path ? path : join(realPath(parent), basename(path));
  }
}

/** Why a file source path is not allowed, naming the rule; undefined when it is inside an allowed folder. */
export function sourcePathProblem(path: string, roots: SourceRoots): string | undefined {
  const real = realPath(resolveSourcePath(path, roots.configDir));
  const allowed = [roots.configDir, ...(roots.fileRoots ?? [])].map((root) => realPath(resolve(roots.configDir, root)));
  if (allowed.some((root) => real === root || real.startsWith(root.endsWith(sep) ? root : root + sep))) return undefined;
  return (
    `${path} resolves to ${real}, outside the config file's folder (${allowed[0]})` +
    `${allowed.length > 1 ? ` and audienceFileRoots (${allowed.slice(1).join(', ')})` : ''}; ` +
    'a file source must be inside one of them: move the file, or add its folder to audienceFileRoots in the config'
  );
}

/** The absolute path of an allowed file source; throws SourceError naming the rule otherwise. */
export function allowedSourcePath(path: string, roots: SourceRoots): string {
  const problem = sourcePathProblem(path, roots);
  if (problem) throw new SourceError(`source.path ${problem}`);
  return resolveSourcePath(path, roots.configDir);
}

/** The format given, else from the extension (.csv; .ndjson/.jsonl/.json). */
export function detectFormat(path: string, format?: FileFormat): FileFormat {
  if (format) return format;
  const ext = extname(path).toLowerCase();
  if (ext === '.csv') return 'csv';
  if (ext === '.ndjson' || ext === '.jsonl' || ext === '.json') return 'ndjson';
  throw new SourceError(`cannot tell the format of ${path}: name it .csv or .ndjson, or set source.format`);
}

/** A malformed or over-long line does not stop the sync: it is reported with its line number and the stream goes on. */
export type FileItem = { member: SourceMember } | { error: string };

/** csv-parse errors after which no later record can be trusted. */
const FATAL_CSV_ERRORS = new Set(['CSV_MAX_RECORD_SIZE', 'CSV_QUOTE_NOT_CLOSED']);

const tooLong = (what: string) => `${what} is longer than ${MAX_RECORD_BYTES} bytes (1 MiB); it was skipped`;

async function* csvMembers(path: string): AsyncGenerator<FileItem> {
  const skipped: string[] = [];
  let headerTooLong: number | undefined;
  // Lines over the cap are dropped before csv-parse sees them (an empty line, skipped), so a file without
  // newlines is never buffered whole and the records after it are still read. Lines go on in ~64 KiB pieces.
  // The header is the exception: without it no column means anything, and the next line must not pass for it.
  async function* cappedText() {
    let piece = '';
    let headerSeen = false;
    for await (const item of boundedLines(createReadStream(path), MAX_RECORD_BYTES)) {
      if ('tooLong' in item && !headerSeen) {
        headerTooLong = item.n;
        return;
      }
      if ('tooLong' in item) skipped.push(tooLong(`line ${item.n}`));
      else if (item.line.trim()) headerSeen = true;
      piece += 'tooLong' in item ? '\n' : `${item.line}\n`;
      if (piece.length >= 65_536) {
        yield piece;
        piece = '';
      }
    }
    if (piece) yield piece;
  }
  const parser = Readable.from(cappedText()).pipe(
    parse({
      columns: true, bom: true, skip_empty_lines: true, trim: true, relax_column_count: true,
      // A quoted field can span lines: a record of many short lines is capped here, and stops the run.
      max_record_size: MAX_RECORD_BYTES,
      // One malformed record (a stray quote) costs only itself. A quote never closed swallows the rest of the
      // file and an over-long record has no end to resume after: those two still stop the run.
      skip_records_with_error: true,
      on_skip: (err) => {
        if (!err || FATAL_CSV_ERRORS.has(err.code)) throw err;
        skipped.push(`line ${err.lines}: ${err.message}; the record was skipped`);
        return undefined;
      },
    }),
  );
  try {
    for await (const record of parser) {
      while (skipped.length) yield { error: skipped.shift()! };
      yield { member: record as SourceMember };
    }
  } catch (err) {
    const e = err as Error & { code?: string; lines?: number };
    if (e.code === 'CSV_MAX_RECORD_SIZE') throw new SourceError(`the CSV record ending at line ${e.lines} is longer than ${MAX_RECORD_BYTES} bytes (1 MiB)`);
    throw err;
  }
  if (headerTooLong !== undefined) throw new SourceError(`the header line (line ${headerTooLong}) of ${path} is longer than ${MAX_RECORD_BYTES} bytes (1 MiB)`);
  while (skipped.length) yield { error: skipped.shift()! };
}

/**
 * Lines of a byte stream, each at most `maxBytes`. A longer line is reported as soon as it passes the cap (not
 * when it ends, which may be never) and the rest of it is discarded as it streams by.
 */
export async function* boundedLines(input: AsyncIterable<Buffer | string>, maxBytes: number): AsyncGenerator<{ n: number; line: string } | { n: number; tooLong: true }> {
  let parts: Buffer[] = [];
  let size = 0;
  let n = 1;
  let skipping = false;
  for await (const raw of input) {
    const chunk = typeof raw === 'string' ? Buffer.from(raw) : raw;
    for (let start = 0; ; ) {
      const newline = chunk.indexOf(10, start);
      const end = newline === -1 ? chunk.length : newline;
      if (!skipping && end > start) {
        if (size + end - start > maxBytes) {
          parts = [];
          size = 0;
          skipping = true;
          yield { n, tooLong: true };
        } else {
          parts.push(chunk.subarray(start, end));
          size += end - start;
        }
      }
      if (newline === -1) break;
      if (!skipping) yield { n, line: Buffer.concat(parts, size).toString('utf8') };
      parts = [];
      size = 0;
      skipping = false;
      n++;
      start = newline + 1;
    }
  }
  if (!skipping && size) yield { n, line: Buffer.concat(parts, size).toString('utf8') };
}

async function* ndjsonMembers(path: string): AsyncGenerator<FileItem> {
  for await (const item of boundedLines(createReadStream(path), MAX_RECORD_BYTES)) {
    if ('tooLong' in item) {
      yield { error: tooLong(`line ${item.n}`) };
      continue;
    }
    const line = item.n === 1 ? item.line.replace(/^\uFEFF/, '') : item.line;
    if (!line.trim()) continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      yield { error: `line ${item.n}: not valid JSON (${(err as Error).message})` };
      continue;
    }
    if (value && typeof value === 'object' && !Array.isArray(value)) yield { member: value as SourceMember };
    else yield { error: `line ${item.n}: expected a JSON object` };
  }
}

/** A file source must be a regular file: a device or pipe such as /dev/zero may never end. */
async function checkRegularFile(path: string): Promise<void> {
  let info;
  try {
    info = await stat(path);
  } catch {
    throw new SourceFileNotFound(`source file not found: ${path}`);
  }
  if (!info.isFile()) throw new SourceError(`source ${path} is not a regular file; point source.path at a CSV or NDJSON file`);
}

/** Stream the members of a file source. */
export async function* streamFile(path: string, format?: FileFormat): AsyncGenerator<FileItem> {
  await checkRegularFile(path);
  yield* detectFormat(path, format) === 'csv' ? csvMembers(path) : ndjsonMembers(path);
}

/** How many NDJSON lines are sampled for field names, and the most names offered. */
export const SAMPLED_NDJSON_LINES = 20;
export const MAX_SOURCE_FIELDS = 1_000;

/**
 * The field names a file source offers for the mapping's Source field: the CSV header, or the keys of the first
 * NDJSON objects (nested objects as dotted paths, which the mapping reads). Only that much of the file is read.
 */
export async function sourceFields(path: string, format?: FileFormat): Promise<string[]> {
  await checkRegularFile(path);
  const fields = detectFormat(path, format) === 'csv' ? await csvHeader(path) : await ndjsonKeys(path);
  return [...new Set(fields)].slice(0, MAX_SOURCE_FIELDS);
}

async function csvHeader(path: string): Promise<string[]> {
  for await (const item of boundedLines(createReadStream(path), MAX_RECORD_BYTES)) {
    if ('tooLong' in item) throw new SourceError(`the header line of ${path} is longer than ${MAX_RECORD_BYTES} bytes (1 MiB)`);
    if (!item.line.replace(/^\uFEFF/, '').trim()) continue;
    try {
      const [header = []] = parseCsvText(item.line, { bom: true, trim: true, relax_column_count: true }) as string[][];
      return header.filter(Boolean);
    } catch (err) {
      throw new SourceError(`the header line of ${path} is not valid CSV: ${(err as Error).message}`);
    }
  }
  return [];
}

function keyPaths(value: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(value).flatMap(([key, inner]) =>
    inner && typeof inner === 'object' && !Array.isArray(inner) && Object.keys(inner).length
      ? keyPaths(inner as Record<string, unknown>, `${prefix}${key}.`)
      : [`${prefix}${key}`]);
}

async function ndjsonKeys(path: string): Promise<string[]> {
  const fields: string[] = [];
  let firstError: string | undefined;
  let sampled = 0;
  for await (const item of ndjsonMembers(path)) {
    if ('member' in item) fields.push(...keyPaths(item.member));
    else firstError ??= item.error;
    if (++sampled >= SAMPLED_NDJSON_LINES) break;
  }
  if (!fields.length && firstError) throw new SourceError(`no JSON object in the first lines of ${path}: ${firstError}`);
  return fields;
}
