// Segment rules (all/any/not, event counts in a time window with property filters, traits) compiled to one
// PostgreSQL query over the core store (profiles, events). Every rule value and JSON key is a bound parameter
// ($n); only fixed SQL text and whole-number counts are written into the statement.
import { parseDuration } from '../../../shared/duration.js';
import type { RuleNode } from '../../audiences/definition.js';
import type { CompiledSql } from '../audience-types.js';
import { countComparisons, isProfileColumn, NUMERIC_TEXT, NUMERIC_TEXT_MAX_LENGTH } from '../segment-rules.js';


/** Adds a value to the parameter list and returns its placeholder. */
type Bind = (value: unknown) => string;

/** A JSON member as jsonb, with JSON null read as SQL NULL (a null trait is a missing trait). */
const member = (column: string, key: string, bind: Bind) => `nullif((${column})::jsonb -> ${bind(key)}::text, 'null'::jsonb)`;

/** A JSON value as a number: numbers and numeric strings; anything else is NULL (never an error). */
const numeric = (json: string) =>
  `(CASE jsonb_typeof(${json}) WHEN 'number' THEN (${json} #>> '{}')::float8 WHEN 'string' THEN ` +
  `(CASE WHEN length(${json} #>> '{}') <= ${NUMERIC_TEXT_MAX_LENGTH} AND (${json} #>> '{}') ~ '${NUMERIC_TEXT}' THEN (${json} #>> '{}')::float8 END) END)`;

/** `contains` on a text (substring, case-insensitive) or an array (element equality). */
function contains(json: string, needle: unknown, bind: Bind): string {
  return `(CASE jsonb_typeof(${json}) WHEN 'array' THEN ${json} @> jsonb_build_array(${bind(JSON.stringify(needle ?? null))}::jsonb) ` +
    `ELSE strpos(lower(${json} #>> '{}'), lower(${bind(String(needle))}::text)) > 0 END)`;
}

/** A trait as jsonb: `location.x`, `properties.x`, or a bare custom trait (properties first, then location). */
function traitJson(trait: string, bind: Bind): string {
  if (trait.startsWith('location.')) return member('p.location', trait.slice(9), bind);
  if (trait.startsWith('properties.')) return member('p.properties', trait.slice(11), bind);
  return `coalesce(${member('p.properties', trait, bind)}, ${member('p.location', trait, bind)})`;
}

function eventCondition(rule: Extract<RuleNode, { event: string }>, bind: Bind, now: number): string {
  // The count subquery is repeated per comparison; each copy binds its own parameters.
  const countSql = () => {
    const where: string[] = ['e.profile_id = p.id', `e.name = ${bind(rule.event)}::text`];
    if (rule.within) where.push(`e.time >= ${bind(now - (parseDuration(rule.within) ?? 0))}::bigint`);
    for (const [property, filter] of Object.entries(rule.where ?? {})) {
      const value = () => member('e.properties', property, bind);
      if (filter.eq !== undefined) where.push(`${value()} = ${bind(JSON.stringify(filter.eq))}::jsonb`);
      if (filter.contains !== undefined) where.push(contains(value(), filter.contains, bind));
      if (filter.gt !== undefined) where.push(`${numeric(value())} > ${bind(filter.gt)}::float8`);
      if (filter.lt !== undefined) where.push(`${numeric(value())} < ${bind(filter.lt)}::float8`);
    }
    return `(SELECT count(*) FROM events e WHERE ${where.join(' AND ')})`;
  };
  const clauses = countComparisons(rule).map(([op, n]) => `${countSql()} ${op} ${n}`);
  return clauses.length === 1 ? clauses[0] : `(${clauses.join(' AND ')})`;
}

function traitCondition(rule: Extract<RuleNode, { trait: string }>, bind: Bind): string {
  const column = isProfileColumn(rule.trait) ? `p.${rule.trait}` : undefined;
  const clauses: string[] = [];
  if (rule.eq !== undefined) {
    clauses.push(column ? `${column} = ${bind(String(rule.eq))}::text` : `${traitJson(rule.trait, bind)} = ${bind(JSON.stringify(rule.eq))}::jsonb`);
  }
  if (rule.contains !== undefined) {
    clauses.push(column ? `strpos(lower(${column}), lower(${bind(String(rule.contains))}::text)) > 0` : contains(traitJson(rule.trait, bind), rule.contains, bind));
  }
  const present = () => `${column ?? traitJson(rule.trait, bind)} IS NOT NULL`;
  if (rule.exists !== undefined) clauses.push(rule.exists ? present() : `NOT (${present()})`);
  if (!clauses.length) clauses.push(present());
  // A missing trait compares as NULL; coalesce makes it false, so `not` of it is true (not NULL again).
  return `coalesce(${clauses.join(' AND ')}, false)`;
}

function compile(rule: RuleNode, bind: Bind, now: number): string {
  if ('all' in rule) return `(${rule.all.map((r) => compile(r, bind, now)).join(' AND ')})`;
  if ('any' in rule) return `(${rule.any.map((r) => compile(r, bind, now)).join(' OR ')})`;
  if ('not' in rule) return `(NOT ${compile(rule.not, bind, now)})`;
  if ('event' in rule) return eventCondition(rule, bind, now);
  return traitCondition(rule, bind);
}

/** The member query: matching profiles with computed fields, in id order. `now` anchors `within` windows. */
export function segmentQuery(rule: RuleNode, now = Date.now()): CompiledSql {
  const params: unknown[] = [];
  const bind: Bind = (value) => {
    params.push(value);
    return `$${params.length}`;
  };
  const where = compile(rule, bind, now);
  return {
    sql: `SELECT p.id, p.email, p.phone_number, p.external_id, p.anonymous_id, p.first_name, p.last_name, p.organization,
        p.title, p.locale, p.image, p.location::jsonb AS location, p.properties::jsonb AS properties, p.first_seen, p.last_seen,
        (SELECT max(e.time) FROM events e WHERE e.profile_id = p.id) AS last_event_time,
        (SELECT count(*) FROM events e WHERE e.profile_id = p.id) AS event_count
      FROM profiles p WHERE ${where} ORDER BY p.id`,
    params,
  };
}
