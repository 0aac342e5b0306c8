// Loads Klaviyo's published OpenAPI spec and validates requests against it. The schemas are never hand-copied:
// everything here is derived from stable.json at start-up.
import { readFileSync, existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

type Json = Record<string, any>;

export interface Operation {
  operationId: string;
  method: string;
  /** Path template from the spec, e.g. `/api/lists/{id}/relationships/profiles`. */
  path: string;
  contentType?: string;
  /** Published rate limits, e.g. `{burst: '10/s', steady: '150/m', daily?: '150/d'}`. */
  rateLimit?: Record<string, string>;
  /** The key scopes the operation needs (`x-klaviyo-scopes`), e.g. `['profiles:write']`. */
  scopes: string[];
  parameters: Json[];
  bodyRequired: boolean;
}

export interface BodyError {
  pointer: string;
  detail: string;
}

/**
 * Where stable.json lives: `KLAVIYO_OPENAPI_SPEC`, else the package's vendored `openapi/` (found by walking up from
 * this file, which runs from src/ in tests and from dist/node/ when installed).
 */
export function findSpecPath(): string {
  if (process.env.KLAVIYO_OPENAPI_SPEC) return process.env.KLAVIYO_OPENAPI_SPEC;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = resolve(dir, 'openapi/stable.json');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error('Klaviyo OpenAPI spec not found: set KLAVIYO_OPENAPI_SPEC to the path of stable.json');
}

/**
 * OpenAPI 3.0 `nullable` is not JSON Schema; rewrite it, and drop annotations ajv would trip over.
 * With `closed`, an object that declares its properties rejects others, as Klaviyo rejects unknown fields
 * ("'x' is not a valid field"); free-form objects (event `properties`) declare none and stay open.
 */
function toJsonSchema(node: any, closed = false): any {
  if (Array.isArray(node)) return node.map((n) => toJsonSchema(n, closed));
  if (!node || typeof node !== 'object') return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === 'example' || k === 'examples' || k === 'discriminator' || k.startsWith('x-')) continue;
    // `properties` maps names to schemas: recurse into each schema, not into the map as if it were one.
    out[k] = k === 'properties' && v && typeof v === 'object'
      ? Object.fromEntries(Object.entries(v).map(([name, sub]) => [name, toJsonSchema(sub, closed)]))
      : toJsonSchema(v, closed);
  }
  // Fields that Klaviyo's own examples send although the schema omits them are accepted, not rejected.
  if (closed && node[EXAMPLE_KEYS]) for (const key of node[EXAMPLE_KEYS]) out.properties[key] ??= {};
  // allOf branches each see only part of the properties, so closing them would reject valid documents.
  if (closed && out.properties && !('additionalProperties' in out) && !node.allOf) out.additionalProperties = false;
  if (closed && out.allOf) out.allOf = node.allOf.map((n: any) => toJsonSchema(n, false));
  if (out.nullable) {
    delete out.nullable;
    if (!out.type) return { anyOf: [out, { type: 'null' }] };
    out.type = [out.type, 'null'];
    if (out.enum) out.enum = [...out.enum, null];
  }
  return out;
}

const EXAMPLE_KEYS = Symbol('keys the examples use beyond the declared properties');

/**
 * Walks each `example` alongside its schema and marks, on every object schema it reaches, the keys the example
 * uses that the schema does not declare (e.g. `attributes.id` in the back-in-stock example). Works on a copy.
 */
function markExampleKeys(schemas: Json): Json {
  const copy = structuredClone(schemas);
  const resolve = (n: any) => {
    for (let i = 0; n?.$ref && i < 20; i++) n = copy[String(n.$ref).split('/').pop()!];
    return n;
  };
  const walk = (schema: any, example: any, depth: number): void => {
    schema = resolve(schema);
    if (!schema || depth > 30 || example === null || typeof example !== 'object') return;
    if (Array.isArray(example)) {
      if (schema.items) for (const item of example) walk(schema.items, item, depth + 1);
      return;
    }
    for (const branch of schema.oneOf ?? []) walk(branch, example, depth + 1);
    if (!schema.properties) return;
    for (const [key, value] of Object.entries(example)) {
      if (schema.properties[key]) walk(schema.properties[key], value, depth + 1);
      else (schema[EXAMPLE_KEYS] ??= new Set<string>()).add(key);
    }
  };
  const visit = (node: any, depth: number): void => {
    if (!node || typeof node !== 'object' || depth > 60) return;
    if (Array.isArray(node)) return node.forEach((n) => visit(n, depth + 1));
    if (node.example && typeof node.example === 'object') walk(node, node.example, 0);
    for (const [k, v] of Object.entries(node)) if (k !== 'example') visit(v, depth + 1);
  };
  visit(copy, 0);
  return copy;
}

export interface OpenApiSpecOptions {
  /** Accept attributes the spec does not declare. Default false: Klaviyo rejects unknown fields. */
  allowUnknownFields?: boolean;
}

/** A query parameter's filter grammar, from the spec's "Allowed field(s)/operator(s)" description. */
export type FilterRules = Map<string, Set<string>>;

const ISO_DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?$/;

function isIsoDateTime(value: string): boolean {
  const m = ISO_DATE_TIME.exec(value);
  return !!m && Number(m[2]) >= 1 && Number(m[2]) <= 12 && Number(m[3]) >= 1 && Number(m[3]) <= 31 && Number(m[4]) <= 23 && Number(m[5]) <= 59 && !Number.isNaN(Date.parse(value));
}

export class OpenApiSpec {
  readonly raw: Json;
  readonly operations: Operation[] = [];
  private readonly ajv: Ajv;
  private readonly validators = new Map<string, ValidateFunction>();
  private readonly byId = new Map<string, Operation>();

  private readonly closed: boolean;

  constructor(raw: Json, options: OpenApiSpecOptions = {}) {
    this.raw = raw;
    this.closed = !options.allowUnknownFields;
    this.ajv = new Ajv({ strict: false, allErrors: true });
    addFormats(this.ajv);
    // Klaviyo parses ISO 8601 leniently (a naive time is taken as UTC); RFC 3339's mandatory offset would be stricter.
    this.ajv.addFormat('date-time', { type: 'string', validate: isIsoDateTime });
    const schemas = this.closed ? markExampleKeys(raw.components.schemas) : raw.components.schemas;
    this.ajv.addSchema({ components: { schemas: toJsonSchema(schemas, this.closed) } }, 'spec');
    for (const [path, item] of Object.entries<Json>(raw.paths)) {
      for (const [method, op] of Object.entries<Json>(item)) {
        if (!op || typeof op !== 'object' || !op.operationId) continue;
        const content = op.requestBody?.content ?? {};
        const operation: Operation = {
          operationId: op.operationId,
          method: method.toUpperCase(),
          path,
          contentType: Object.keys(content)[0],
          rateLimit: op['x-klaviyo-ratelimit'],
          scopes: op['x-klaviyo-scopes'] ?? [],
          parameters: op.parameters ?? [],
          bodyRequired: !!op.requestBody?.required,
        };
        this.operations.push(operation);
        this.byId.set(operation.operationId, operation);
      }
    }
  }

  static load(path = findSpecPath(), options: OpenApiSpecOptions = {}): OpenApiSpec {
    return new OpenApiSpec(JSON.parse(readFileSync(path, 'utf8')), options);
  }

  /** Follows `$ref`s into components. */
  resolve(node: any): any {
    while (node && node.$ref) node = this.raw.components.schemas[String(node.$ref).split('/').pop()!];
    return node;
  }

  /** Field → allowed operators for an operation's `filter` parameter; undefined when it has none. */
  filterRules(operationId: string): FilterRules | undefined {
    const param = this.operation(operationId).parameters.find((p) => p.name === 'filter' && p.in === 'query');
    if (!param) return undefined;
    const rules: FilterRules = new Map();
    const allowed = String(param.description ?? '').split(/Allowed field\(s\)\/operator\(s\):/)[1] ?? '';
    for (const line of allowed.split('<br>')) {
      const m = /^`([^`]+)`:\s*(.*)$/.exec(line.trim());
      if (m) rules.set(m[1], new Set([...m[2].matchAll(/`([^`]+)`/g)].map((x) => x[1])));
    }
    return rules;
  }

  operation(operationId: string): Operation {
    const op = this.byId.get(operationId);
    if (!op) throw new Error(`unknown operation ${operationId}`);
    return op;
  }

  /** The request-body schema of an operation, as JSON Schema with `$ref`s into `spec#/components/schemas`. */
  bodySchema(operationId: string): Json | undefined {
    const op = this.operation(operationId);
    const schema = this.raw.paths[op.path][op.method.toLowerCase()].requestBody?.content?.[op.contentType!]?.schema;
    if (!schema) return undefined;
    return schema.$ref ? { $ref: schema.$ref.replace('#/', 'spec#/') } : toJsonSchema(schema, this.closed);
  }

  /** Validate a request body; an empty array means valid. */
  validateBody(operationId: string, body: unknown): BodyError[] {
    let fn = this.validators.get(operationId);
    if (!fn) {
      const schema = this.bodySchema(operationId);
      if (!schema) return [];
      fn = this.ajv.compile(schema);
      this.validators.set(operationId, fn);
    }
    if (fn(body)) return [];
    return dedupe(fn.errors ?? []).map((e) => ({ pointer: pointerOf(e), detail: describe(e) }));
  }

  /** Check a response document against the spec's schema for that status (tests of the sandbox's own answers). */
  validateResponse(operationId: string, status: number, body: unknown): BodyError[] {
    const op = this.operation(operationId);
    const responses = this.raw.paths[op.path][op.method.toLowerCase()].responses ?? {};
    let response = responses[String(status)] ?? responses[`${String(status)[0]}XX`];
    if (response?.$ref) response = this.raw.components.responses?.[String(response.$ref).split('/').pop()!];
    const schema = response?.content?.['application/vnd.api+json']?.schema;
    if (!schema) return [{ pointer: '/', detail: `the spec declares no JSON:API response ${status} for ${operationId}` }];
    const key = `response ${operationId} ${status}`;
    let fn = this.validators.get(key);
    if (!fn) {
      fn = this.ajv.compile(schema.$ref ? { $ref: schema.$ref.replace('#/', 'spec#/') } : toJsonSchema(schema, this.closed));
      this.validators.set(key, fn);
    }
    if (fn(body)) return [];
    return dedupe(fn.errors ?? []).map((e) => ({ pointer: pointerOf(e), detail: describe(e) }));
  }
}

/** anyOf branches produced by `nullable` repeat every error; keep the most specific ones. */
function dedupe(errors: ErrorObject[]): ErrorObject[] {
  const meaningful = errors.filter((e) => e.keyword !== 'anyOf' && !(e.keyword === 'type' && (e.params as Json).type === 'null'));
  const seen = new Set<string>();
  return (meaningful.length ? meaningful : errors).filter((e) => {
    const key = e.instancePath + e.message;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Unknown fields point at the field itself, like Klaviyo's `source.pointer`. */
function pointerOf(e: ErrorObject): string {
  if (e.keyword === 'additionalProperties') return `${e.instancePath}/${(e.params as Json).additionalProperty}`;
  return e.instancePath || '/';
}

function describe(e: ErrorObject): string {
  const where = e.instancePath ? `'${e.instancePath}'` : 'the body';
  if (e.keyword === 'additionalProperties') return `'${(e.params as Json).additionalProperty}' is not a valid field for ${where}.`;
  if (e.keyword === 'required') return `'${(e.params as Json).missingProperty}' is a required field at ${where}.`;
  if (e.keyword === 'enum') return `${where} must be one of ${JSON.stringify((e.params as Json).allowedValues)}.`;
  return `${where} ${e.message}.`;
}
