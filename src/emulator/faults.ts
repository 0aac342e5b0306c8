// Fault injection for tests: added latency, error statuses (5xx, 429 with Retry-After) and dropped connections,
// for the next N matching requests or a share of them.

export interface FaultRule {
  method?: string;
  /** Path prefix, e.g. '/client/events'. */
  path?: string;
  status?: number;
  /** Seconds, sent as Retry-After (429 defaults to 1). */
  retryAfter?: number;
  latencyMs?: number;
  /** Destroy the socket without an answer. */
  drop?: boolean;
  /** Only the next N matching requests. */
  count?: number;
  /** Share of matching requests, 0..1. */
  ratio?: number;
}

export class FaultRules {
  private rules: FaultRule[] = [];

  constructor(private readonly random: () => number = Math.random) {}

  /** Checks a rule before accepting it, so a typo in a test fails loudly. */
  add(rule: FaultRule): void {
    const problems: string[] = [];
    if (rule.status !== undefined && !(Number.isInteger(rule.status) && rule.status >= 400 && rule.status <= 599)) problems.push('status must be an integer 400..599');
    if (rule.ratio !== undefined && !(rule.ratio >= 0 && rule.ratio <= 1)) problems.push('ratio must be within 0..1');
    if (rule.count !== undefined && !(Number.isInteger(rule.count) && rule.count > 0)) problems.push('count must be a positive integer');
    if (rule.latencyMs !== undefined && !(rule.latencyMs >= 0)) problems.push('latencyMs must be >= 0');
    if (rule.retryAfter !== undefined && !(rule.retryAfter >= 0)) problems.push('retryAfter must be >= 0');
    if (rule.status === undefined && !rule.drop && rule.latencyMs === undefined) problems.push('a rule needs status, drop or latencyMs');
    if (problems.length) throw new Error(`Invalid fault rule: ${problems.join('; ')}.`);
    this.rules.push({ ...rule, method: rule.method?.toUpperCase() });
  }

  clear(): void {
    this.rules = [];
  }

  list(): FaultRule[] {
    return this.rules.map((r) => ({ ...r }));
  }

  get size(): number {
    return this.rules.length;
  }

  /** The first rule that fires for this request (consuming one of its count), if any. */
  pick(method: string, path: string): FaultRule | undefined {
    for (let i = 0; i < this.rules.length; i++) {
      const r = this.rules[i];
      if (r.method && r.method !== method) continue;
      if (r.path && !path.startsWith(r.path)) continue;
      if (r.ratio !== undefined && this.random() >= r.ratio) continue;
      if (r.count !== undefined && --r.count <= 0) this.rules.splice(i, 1);
      return r;
    }
    return undefined;
  }
}
