// Segment rules (all/any/not, event counts in a time window with property filters, traits) compiled to one
// SQLite query over the core store (profiles, events), streamed in keyset pages. Rule values are always bound as
// parameters.
import type { Db } from './db.js';
import { parseDuration } from '../../shared/duration.js';
import type { RuleNode } from '../audiences/definition.js';
import type { CompiledSql, SegmentProfile } from './audience-types.js';
import { countComparisons, isProfileColumn, NUMERIC_TEXT, NUMERIC_TEXT_MAX_LENGTH } from './segment-rules.js';


/** A JSON path for one key, quoted so names with spaces or dots work. */
const jsonKey = (key: string) => `$.${JSON.stringify(key)}`;

/** SQL for a trait's value: a profile column, `location.x`, `properties.x`, or a bare custom trait. */
function traitExpr(trait: string, params: unknown[]): string {
  if (isProfileColumn(trait)) return `p.${trait}`;
  if (trait.startsWith('location.')) {
    params.push(jsonKey(trait.slice(9)));
    return `json_extract(p.location, ?)`;
  }
  if (trait.startsWith('properties.')) {
    params.push(jsonKey(trait.slice(11)));
    return `json_extract(p.properties, ?)`;
  }
  params.push(jsonKey(trait), jsonKey(trait));
  return `coalesce(json_extract(p.properties, ?), json_extract(p.location, ?))`;
}

const numericText = new RegExp(NUMERIC_TEXT);

/**
 * `relay_number(json_type, value)`: a JSON number, or a numeric text, as a number; anything else NULL, so it
 * matches neither `gt` nor `lt`. SQLite's own CAST would read "abc" as 0, "12abc" as 12 and true as 1.
 */
function registerFunctions(db: Db): void {
  db.function('relay_number', { deterministic: true }, (type: unknown, value: unknown) => {
    if (type === 'integer' || type === 'real') return value as number;
    if (type === 'text' && (value as string).length <= NUMERIC_TEXT_MAX_LENGTH && numericText.test(value as string)) return Number(value);
    return null;
  });
}

/** A property's value as a number for `gt`/`lt` (see relay_number). */
function numberExpr(path: string, params: unknown[]): string {
  params.push(path, path);
  return 'relay_number(json_type(e.properties, ?), json_extract(e.properties, ?))';
}

/** SQLite compares JSON scalars as SQL values: booleans are 1/0 there. */
const sqlValue = (v: unknown) => (typeof v === 'boolean' ? (v ? 1 : 0) : v);

/** `contains` on a text (substring, case-insensitive) or an array (element equality). */
function containsExpr(column: string, path: string, needle: unknown, params: unknown[]): string {
  params.push(path, path, sqlValue(needle), path, String(needle));
  return `(CASE json_type(${column}, ?) WHEN 'array' THEN EXISTS (SELECT 1 FROM json_each(${column}, ?) WHERE value = ?) ELSE instr(lower(json_extract(${column}, ?)), lower(?)) > 0 END)`;
}

function eventCondition(rule: Extract<RuleNode, { event: string }>, params: unknown[], now: number): string {
  const local: unknown[] = [rule.event];
  const where: string[] = ['e.profile_id = p.id', 'e.name = ?'];
  if (rule.within) {
    where.push('e.time >= ?');
    local.push(now - (parseDuration(rule.within) ?? 0));
  }
  for (const [property, filter] of Object.entries(rule.where ?? {})) {
    const path = jsonKey(property);
    if (filter.eq !== undefined) {
      where.push('json_extract(e.properties, ?) = ?');
      local.push(path, sqlValue(filter.eq));
    }
    if (filter.contains !== undefined) where.push(containsExpr('e.properties', path, filter.contains, local));
    if (filter.gt !== undefined) {
      where.push(`${numberExpr(path, local)} > ?`);
      local.push(filter.gt);
    }
    if (filter.lt !== undefined) {
      where.push(`${numberExpr(path, local)} < ?`);
      local.push(filter.lt);
    }
  }
  const countSql = `(SELECT count(*) FROM events e WHERE ${where.join(' AND ')})`;
  const clauses = countComparisons(rule).map(([op, n]) => {
    params.push(...local);
    return `${countSql} ${op} ${n}`;
  });
  return clauses.length === 1 ? clauses[0] : `(${clauses.join(' AND ')})`;
}

function traitCondition(rule: Extract<RuleNode, { trait: string }>, params: unknown[]): string {
  const clauses: string[] = [];
  if (rule.eq !== undefined) {
    clauses.push(`${traitExpr(rule.trait, params)} = ?`);
    params.push(sqlValue(rule.eq));
  }
  if (rule.contains !== undefined) {
    if (isProfileColumn(rule.trait)) {
      clauses.push(`instr(lower(p.${rule.trait}), lower(?)) > 0`);
      params.push(String(rule.contains));
    } else {
      const [column, key] = rule.trait.startsWith('location.')
        ? ['p.location', rule.trait.slice(9)]
        : ['p.properties', rule.trait.startsWith('properties.') ? rule.trait.slice(11) : rule.trait];
      clauses.push(containsExpr(column, jsonKey(key), rule.contains, params));
    }
  }
  if (rule.exists !== undefined) clauses.push(`${traitExpr(rule.trait, params)} IS ${rule.exists ? 'NOT ' : ''}NULL`);
  if (!clauses.length) clauses.push(`${traitExpr(rule.trait, params)} IS NOT NULL`);
  // A missing trait compares as NULL; coalesce makes it false, so `not` of it is true (not NULL again).
  return `coalesce(${clauses.join(' AND ')}, 0)`;
}

/** The WHERE clause (over `profiles p`) for a rule tree. `now` anchors `within` windows. */
export function compileRule(rule: RuleNode, params: unknown[] = [], now = Date.now()): CompiledSql {
  const sql = (() => {
    if ('all' in rule) return `(${rule.all.map((r) => compileRule(r, params, now).sql).join(' AND ')})`;
    if ('any' in rule) return `(${rule.any.map((r) => compileRule(r, params, now).sql).join(' OR ')})`;
    if ('not' in rule) return `(NOT ${compileRule(rule.not, params, now).sql})`;
    if ('event' in rule) return eventCondition(rule, params, now);
    return traitCondition(rule, params);
  })();
  return { sql, params };
}

/** The member query for one page: matching profiles after `afterId`, with computed fields, in id order. */
export function segmentQuery(rule: RuleNode, now = Date.now(), pageSize = 1000): CompiledSql {
  const where = compileRule(rule, [], now);
  return {
    sql: `SELECT p.id, p.email, p.phone_number, p.external_id, p.anonymous_id, p.first_name, p.last_name, p.organization,
        p.title, p.locale, p.image, p.location, p.properties, p.first_seen, p.last_seen,
        (SELECT max(time) FROM events e WHERE e.profile_id = p.id) AS last_event_time,
        (SELECT count(*) FROM events e WHERE e.profile_id = p.id) AS event_count
      FROM profiles p WHERE p.id > ? AND ${where.sql} ORDER BY p.id LIMIT ${Math.max(1, Math.trunc(pageSize))}`,
    params: where.params,
  };
}

type ProfileRow = Omit<SegmentProfile, 'location' | 'properties'> & { location: string | null; properties: string | null };

const toProfile = (row: ProfileRow): SegmentProfile => ({
  ...row,
  location: row.location ? JSON.parse(row.location) : {},
  properties: row.properties ? JSON.parse(row.properties) : {},
});

/**
 * Stream the segment's profiles a page at a time (keyset on the profile id). Pages rather than one open cursor:
 * the sync writes its state on the same connection while it reads, and better-sqlite3 refuses a write while a
 * cursor is open. Memory stays at one page whatever the segment's size.
 */
export async function* streamSegment(db: Db, rule: RuleNode, now = Date.now(), pageSize = 1000): AsyncGenerator<SegmentProfile> {
  registerFunctions(db);
  const q = segmentQuery(rule, now, pageSize);
  const page = db.prepare(q.sql);
  let afterId = 0;
  for (;;) {
    const rows = page.all(afterId, ...q.params) as ProfileRow[];
    for (const row of rows) yield toProfile(row);
    if (rows.length < pageSize) return;
    afterId = rows[rows.length - 1].id;
  }
}
