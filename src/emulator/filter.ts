// Klaviyo's `filter` query syntax: `equals(email,"a@b.co")`, `any(email,["a@b.co","c@d.co"])`,
// `and(equals(…),greater-than(created,2024-01-01T00:00:00Z))`; top-level expressions separated by commas are ANDed.
import { ApiError } from './errors.js';
import type { FilterRules } from './openapi.js';

export type FilterValue = string | number | boolean | null | Date | FilterValue[];

export interface Condition {
  operator: string;
  field: string;
  value: FilterValue;
}

const bad = (detail: string) => new ApiError(400, 'invalid', `Invalid filter provided: ${detail}`, { parameter: 'filter' });

class Parser {
  private pos = 0;
  constructor(private readonly text: string) {}

  parseAll(): Condition[] {
    const out: Condition[] = [];
    do {
      this.skipSpace();
      out.push(...this.expression());
      this.skipSpace();
    } while (this.eat(','));
    if (this.pos < this.text.length) throw bad(`unexpected '${this.text.slice(this.pos, this.pos + 10)}' at position ${this.pos}.`);
    return out;
  }

  private expression(): Condition[] {
    const name = this.word();
    if (!name) throw bad(`expected an operator such as equals(…) at position ${this.pos}.`);
    this.expect('(');
    if (name === 'and') {
      const parts: Condition[] = [];
      do parts.push(...this.expression());
      while (this.eat(','));
      this.expect(')');
      return parts;
    }
    if (name === 'or' || name === 'not') throw bad(`'${name}' is not supported by this endpoint.`);
    const field = this.word();
    if (!field) throw bad(`expected a field name after '${name}('.`);
    this.expect(',');
    const value = this.value();
    this.expect(')');
    return [{ operator: name, field, value }];
  }

  private value(): FilterValue {
    this.skipSpace();
    const c = this.text[this.pos];
    if (c === '"' || c === "'") return this.quoted(c);
    if (c === '[') {
      this.pos++;
      const items: FilterValue[] = [];
      this.skipSpace();
      if (this.eat(']')) return items;
      do items.push(this.value());
      while (this.eat(','));
      this.expect(']');
      return items;
    }
    const raw = this.word();
    if (!raw) throw bad(`expected a value at position ${this.pos}.`);
    if (raw === 'true' || raw === 'false') return raw === 'true';
    if (raw === 'null') return null;
    if (/^-?\d+(\.\d+)?$/.test(raw)) return Number(raw);
    // A naive date-time is UTC for Klaviyo; JavaScript would read it as local time.
    const date = /^\d{4}-\d{2}-\d{2}/.test(raw) ? new Date(/T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(raw) ? `${raw}Z` : raw) : undefined;
    if (date && !Number.isNaN(date.getTime())) return date;
    throw bad(`'${raw}' is not a valid value: quote strings, e.g. "${raw}".`);
  }

  private quoted(q: string): string {
    this.pos++;
    let out = '';
    while (this.pos < this.text.length && this.text[this.pos] !== q) {
      if (this.text[this.pos] === '\\' && this.pos + 1 < this.text.length) this.pos++;
      out += this.text[this.pos++];
    }
    if (this.text[this.pos] !== q) throw bad('unterminated string.');
    this.pos++;
    return out;
  }

  private word(): string {
    this.skipSpace();
    const m = /^[A-Za-z0-9_.:+\-$]+/.exec(this.text.slice(this.pos));
    if (!m) return '';
    this.pos += m[0].length;
    return m[0];
  }

  private eat(ch: string): boolean {
    this.skipSpace();
    if (this.text[this.pos] !== ch) return false;
    this.pos++;
    return true;
  }

  private expect(ch: string): void {
    if (!this.eat(ch)) throw bad(`expected '${ch}' at position ${this.pos}.`);
  }

  private skipSpace(): void {
    while (this.text[this.pos] === ' ') this.pos++;
  }
}

/** Parses a filter expression without checking its fields (for a body's filter list, which the caller checks). */
export const parseConditions = (text: string): Condition[] => new Parser(text).parseAll();

/** Parses a filter and checks each field/operator against what the operation allows. */
export function parseFilter(text: string, rules: FilterRules): Condition[] {
  const conditions = parseConditions(text);
  for (const c of conditions) {
    const ops = rules.get(c.field);
    if (!ops) throw bad(`'${c.field}' is not a filterable field. Allowed: ${[...rules.keys()].join(', ')}.`);
    if (!ops.has(c.operator)) throw bad(`operator '${c.operator}' is not allowed for '${c.field}'. Allowed: ${[...ops].join(', ')}.`);
    if (c.operator === 'any' && !Array.isArray(c.value)) throw bad(`any(${c.field},…) takes a list, e.g. any(${c.field},["a","b"]).`);
    // The spec's own examples write equals(name,['example']); a one-item list means that item.
    if (c.operator === 'equals' && Array.isArray(c.value)) {
      if (c.value.length !== 1) throw bad(`equals(${c.field},…) takes one value; use any(…) for several.`);
      c.value = c.value[0];
    }
  }
  return conditions;
}

/** Whether a record satisfies every condition; `get` reads a (dotted) field. */
export function matches(conditions: Condition[], get: (field: string) => unknown): boolean {
  return conditions.every((c) => {
    const actual = get(c.field);
    switch (c.operator) {
      case 'equals':
        return sameValue(actual, c.value);
      case 'any':
        return (c.value as FilterValue[]).some((v) => sameValue(actual, v));
      case 'greater-than':
      case 'greater-or-equal':
      case 'less-than':
      case 'less-or-equal': {
        const a = toNumber(actual);
        const b = toNumber(c.value);
        if (a === undefined || b === undefined) return false;
        return c.operator === 'greater-than' ? a > b : c.operator === 'greater-or-equal' ? a >= b : c.operator === 'less-than' ? a < b : a <= b;
      }
      default:
        return false;
    }
  });
}

function sameValue(actual: unknown, expected: FilterValue): boolean {
  if (expected instanceof Date) return toNumber(actual) === expected.getTime();
  return actual === expected || (actual === undefined && expected === null);
}

function toNumber(v: unknown): number | undefined {
  if (v instanceof Date) return v.getTime();
  if (typeof v === 'number') return v;
  if (typeof v === 'string') {
    const t = Date.parse(v);
    return Number.isNaN(t) ? undefined : t;
  }
  return undefined;
}
