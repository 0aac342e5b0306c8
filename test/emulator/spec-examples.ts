// Assembles request bodies from the spec's own `example` values, to prove the validator is not stricter than
// Klaviyo: every body Klaviyo documents must pass.
import type { OpenApiSpec } from '../../src/emulator/openapi.js';

const FORMAT_SAMPLES: Record<string, string> = {
  'date-time': '2024-01-01T00:00:00Z',
  date: '2024-01-01',
  email: 'sarah.mason@klaviyo-demo.com',
  uri: 'https://example.com',
  uuid: '3b241101-e2bb-4255-8caf-4136c566a962',
};

/** One instance of a schema: its example where it has one, else assembled from its parts. */
export function exampleOf(spec: OpenApiSpec, node: any, mode: 'full' | 'required', depth = 0): unknown {
  const schema = spec.resolve(node);
  if (!schema || depth > 25) return undefined;
  if (schema.example !== undefined) return schema.example;
  if (schema.enum) return schema.enum[0];
  if (schema.oneOf) return exampleOf(spec, schema.oneOf[0], mode, depth + 1);
  if (schema.allOf) return Object.assign({}, ...schema.allOf.map((s: any) => exampleOf(spec, s, mode, depth + 1)));
  if (schema.default !== undefined && schema.type !== 'object') return schema.default;
  switch (schema.type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      const required: string[] = schema.required ?? [];
      for (const [name, sub] of Object.entries<any>(schema.properties ?? {})) {
        if (mode === 'required' && !required.includes(name)) continue;
        const v = exampleOf(spec, sub, mode, depth + 1);
        if (v !== undefined) out[name] = v;
      }
      return out;
    }
    case 'array': {
      const item = exampleOf(spec, schema.items, mode, depth + 1);
      return item === undefined ? [] : [item];
    }
    case 'string':
      return FORMAT_SAMPLES[schema.format] ?? 'example';
    case 'integer':
      return schema.minimum ?? 1;
    case 'number':
      return schema.minimum ?? 1.5;
    case 'boolean':
      return false;
    default:
      return undefined;
  }
}

/** The full and required-only example body of every operation that takes one. */
export function requestExamples(spec: OpenApiSpec): Array<{ operationId: string; mode: 'full' | 'required'; body: unknown }> {
  const out: Array<{ operationId: string; mode: 'full' | 'required'; body: unknown }> = [];
  for (const op of spec.operations) {
    const content = spec.raw.paths[op.path][op.method.toLowerCase()].requestBody?.content;
    if (!content) continue;
    const media = content[op.contentType!];
    for (const mode of ['full', 'required'] as const) {
      out.push({ operationId: op.operationId, mode, body: media.example ?? exampleOf(spec, media.schema, mode) });
    }
    for (const ex of Object.values<any>(media.examples ?? {})) out.push({ operationId: op.operationId, mode: 'full', body: ex.value });
  }
  return out;
}
