// The recent requests, oldest first, bounded: what the admin API and the QA page show, rejections with why.

export interface LoggedRequest {
  time: number;
  method: string;
  path: string;
  operationId?: string;
  status: number;
  /** Why it was rejected (the first error's detail), for 4xx/5xx. */
  error?: string;
  body?: unknown;
}

export class RequestLog {
  readonly entries: LoggedRequest[] = [];

  constructor(private readonly max = 1000) {}

  add(entry: LoggedRequest): void {
    this.entries.push(entry);
    // Trim in chunks so the common path stays a push.
    if (this.entries.length > this.max + 100) this.entries.splice(0, this.entries.length - this.max);
  }

  rejected(n: number): LoggedRequest[] {
    const out: LoggedRequest[] = [];
    for (let i = this.entries.length - 1; i >= 0 && out.length < n; i--) if (this.entries[i].status >= 400) out.push(this.entries[i]);
    return out;
  }

  clear(): void {
    this.entries.length = 0;
  }
}
