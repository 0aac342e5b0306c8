// Maps a request path onto the spec's operations (path templates such as `/api/lists/{id}`).
import type { Operation, OpenApiSpec } from './openapi.js';

export interface RouteMatch {
  operation: Operation;
  params: Record<string, string>;
}

interface CompiledPath {
  pattern: RegExp;
  names: string[];
  byMethod: Map<string, Operation>;
}

export class RouteTable {
  private readonly exact = new Map<string, CompiledPath>();
  private readonly templated: CompiledPath[] = [];

  constructor(spec: OpenApiSpec) {
    const byPath = new Map<string, CompiledPath>();
    for (const op of spec.operations) {
      let entry = byPath.get(op.path);
      if (!entry) {
        const names: string[] = [];
        const source = op.path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{([^}]+)\}/g, (_, name) => {
          names.push(name);
          return '([^/]+)';
        });
        entry = { pattern: new RegExp(`^${source}$`), names, byMethod: new Map() };
        byPath.set(op.path, entry);
        if (names.length) this.templated.push(entry);
        else this.exact.set(op.path, entry);
      }
      entry.byMethod.set(op.method, op);
    }
    // Literal segments win over placeholders (`/api/lists/{id}/profiles` vs a hypothetical `/api/lists/x/{y}`).
    this.templated.sort((a, b) => a.names.length - b.names.length);
  }

  /** The operation for a path (trailing slash accepted, as Klaviyo does); `allowed` lists methods on a 405. */
  match(method: string, rawPath: string): RouteMatch | { allowed: string[] } | undefined {
    const path = rawPath.length > 1 && rawPath.endsWith('/') ? rawPath.slice(0, -1) : rawPath;
    let entry = this.exact.get(path);
    let params: Record<string, string> = {};
    if (!entry) {
      for (const candidate of this.templated) {
        const m = candidate.pattern.exec(path);
        if (!m) continue;
        entry = candidate;
        params = Object.fromEntries(candidate.names.map((n, i) => [n, safeDecode(m[i + 1])]));
        break;
      }
    }
    if (!entry) return undefined;
    const operation = entry.byMethod.get(method);
    if (!operation) return { allowed: [...entry.byMethod.keys()] };
    return { operation, params };
  }
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
