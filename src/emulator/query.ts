// Query-parameter checks derived from each operation's declared parameters: page[size] bounds, enums of sort,
// fields[…], include and additional-fields[…], and the filter grammar.
import { ApiError } from './errors.js';
import { parseFilter, type Condition } from './filter.js';
import type { OpenApiSpec, Operation } from './openapi.js';

export interface ParsedQuery {
  filter: Condition[];
  pageSize?: number;
  cursor?: string;
  sort?: string;
  /** Every parameter as sent, e.g. `additional-fields[profile]`. */
  raw: URLSearchParams;
}

const param = (name: string, detail: string) => new ApiError(400, 'invalid', detail, { parameter: name });

export function parseQuery(spec: OpenApiSpec, op: Operation, query: URLSearchParams): ParsedQuery {
  const out: ParsedQuery = { filter: [], raw: query };
  for (const p of op.parameters) {
    if (p.in !== 'query') continue;
    const value = query.get(p.name);
    if (value === null) continue;
    const schema = spec.resolve(p.schema) ?? {};
    if (p.name === 'filter') {
      out.filter = parseFilter(value, spec.filterRules(op.operationId) ?? new Map());
    } else if (schema.type === 'integer') {
      const n = Number(value);
      if (!/^-?\d+$/.test(value) || (schema.minimum !== undefined && n < schema.minimum) || (schema.maximum !== undefined && n > schema.maximum)) {
        throw param(p.name, `'${p.name}' must be an integer between ${schema.minimum ?? '-∞'} and ${schema.maximum ?? '∞'}; got '${value}'.`);
      }
      if (p.name === 'page[size]') out.pageSize = n;
    } else if (schema.type === 'array') {
      const allowed = spec.resolve(schema.items)?.enum as string[] | undefined;
      for (const item of value.split(',')) {
        if (allowed && !allowed.includes(item)) throw param(p.name, `'${item}' is not a valid value for '${p.name}'. Allowed: ${allowed.join(', ')}.`);
      }
    } else if (schema.enum && !schema.enum.includes(value)) {
      throw param(p.name, `'${value}' is not a valid value for '${p.name}'. Allowed: ${schema.enum.join(', ')}.`);
    }
    if (p.name === 'page[cursor]') out.cursor = value;
    if (p.name === 'sort') out.sort = value;
  }
  return out;
}

/** The declared default page size ("Default: 20. Min: 1. Max: 100."). */
export function defaultPageSize(spec: OpenApiSpec, op: Operation): number {
  const p = op.parameters.find((x) => x.name === 'page[size]');
  return spec.resolve(p?.schema)?.default ?? 20;
}
