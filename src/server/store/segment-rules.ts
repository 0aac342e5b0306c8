// What both segment compilers (SQLite, PostgreSQL) share: which traits are profile columns, how an event
// condition's count turns into comparisons, and which property values `gt`/`lt` compare as numbers.
import type { RuleNode } from '../audiences/definition.js';

/** Profile columns a segment member carries and a trait rule can name directly. */
export const SEGMENT_PROFILE_COLUMNS = ['email', 'phone_number', 'external_id', 'anonymous_id', 'first_name', 'last_name', 'organization', 'title', 'locale', 'image'] as const;

/** Whether a trait name is a profile column rather than a JSON member. */
export const isProfileColumn = (trait: string): boolean => (SEGMENT_PROFILE_COLUMNS as readonly string[]).includes(trait);

/** The count comparisons of an event condition, as [operator, whole number]; "at least once" by default. */
export function countComparisons(rule: Extract<RuleNode, { event: string }>): [string, number][] {
  const count = rule.count ?? {};
  const comparisons: [string, number][] = [];
  if (count.gte !== undefined) comparisons.push(['>=', Math.trunc(count.gte)]);
  if (count.lte !== undefined) comparisons.push(['<=', Math.trunc(count.lte)]);
  if (count.eq !== undefined) comparisons.push(['=', Math.trunc(count.eq)]);
  if (!comparisons.length) comparisons.push(['>=', 1]);
  return comparisons;
}

/**
 * A text that `gt`/`lt` reads as a number (" 12.5 ", "1e3", "-4"); any other text, a boolean or an object matches
 * neither comparison, on both backends. At most 40 characters, a two-digit exponent and only ASCII blanks around
 * it keep every such text castable to a double, so PostgreSQL's cast never fails on hostile input. The pattern is
 * valid in JavaScript and PostgreSQL regular expressions alike.
 */
export const NUMERIC_TEXT = '^[ \\t\\n\\r]*[-+]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][-+]?[0-9]{1,2})?[ \\t\\n\\r]*$';
export const NUMERIC_TEXT_MAX_LENGTH = 40;
