// The one way zod problems are told to people (server side only: the snippet has no zod). Each issue becomes
// "field: message", the field written as `audiences[0].source.path`; an unknown key names the closest known one.
import type { z } from 'zod';

export interface FieldIssue {
  /** `audiences[0].name`, or `(root)` for the value itself. */
  field: string;
  message: string;
}

/** `root` names the value itself (an empty path). */
export function fieldPath(path: readonly PropertyKey[], root = '(root)'): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '') || root;
}

export function fieldIssues(error: z.ZodError, root?: string): FieldIssue[] {
  return error.issues.map((issue) => ({ field: fieldPath(issue.path, root), message: issue.message }));
}

/** "profile.email: must be a valid email address; time: …" */
export function describeIssues(error: z.ZodError, separator = '; ', root?: string): string {
  return fieldIssues(error, root).map((i) => `${i.field}: ${i.message}`).join(separator);
}

/** Edit distance (insertions, deletions, substitutions), case-insensitive. */
function distance(a: string, b: string): number {
  a = a.toLowerCase();
  b = b.toLowerCase();
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

/** The candidate a typo most likely meant: within a third of its length in edits (at least 2), else undefined. */
export function closestName(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const candidate of candidates) {
    const d = distance(word, candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best;
}

/**
 * Parse-time error map (`schema.safeParse(input, { error: suggestKnownKeys })`): an unrecognized key is told
 * with the key of that object it most likely meant, e.g. `Unrecognized key "allowedOrigin": did you mean "allowedOrigins"?`.
 */
export function suggestKnownKeys(issue: { code?: string; keys?: string[]; inst?: unknown }): string | undefined {
  if (issue.code !== 'unrecognized_keys' || !issue.keys) return undefined;
  const shape = (issue.inst as { _zod?: { def?: { shape?: Record<string, unknown> } } } | undefined)?._zod?.def?.shape;
  const known = shape ? Object.keys(shape) : [];
  return issue.keys
    .map((key) => {
      const suggestion = closestName(key, known);
      return `Unrecognized key "${key}"${suggestion ? `: did you mean "${suggestion}"?` : known.length ? ` (known keys: ${known.join(', ')})` : ''}`;
    })
    .join('; ');
}
