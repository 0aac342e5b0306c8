// Metrics and their events. Klaviyo keeps one event per (profile, metric, unique_id); without a unique_id the
// event's timestamp (to the second) stands in for it, so one event per profile and metric per second survives.
import { eventId, shortId } from '../ids.js';

export interface StoredEvent {
  id: string;
  metric: string;
  profileId: string;
  properties: Record<string, unknown>;
  time: string;
  value?: number;
  value_currency?: string;
  unique_id?: string;
  /** 'client' for /client/*, 'server' for /api/*. */
  source: 'client' | 'server';
  received: string;
}

export interface Metric {
  id: string;
  name: string;
  count: number;
  /** Events dropped as duplicates of an earlier one. */
  duplicates: number;
  created: string;
}

export type NewEvent = Omit<StoredEvent, 'id' | 'received'>;

/** Bounded so a long demo or a benchmark cannot exhaust memory; the oldest events go first. */
const MAX_EVENTS = 200_000;

export class EventStore {
  readonly metrics = new Map<string, Metric>();
  private list: StoredEvent[] = [];
  private readonly seen = new Set<string>();

  /** Stores the event unless it duplicates an earlier one; returns the stored event or undefined. */
  add(input: NewEvent): StoredEvent | undefined {
    let metric = this.metrics.get(input.metric);
    if (!metric) {
      metric = { id: shortId(), name: input.metric, count: 0, duplicates: 0, created: new Date().toISOString() };
      this.metrics.set(input.metric, metric);
    }
    const key = dedupKey(input);
    if (this.seen.has(key)) {
      metric.duplicates++;
      return undefined;
    }
    this.seen.add(key);
    const event: StoredEvent = { id: eventId(), ...input, received: new Date().toISOString() };
    this.list.push(event);
    metric.count++;
    if (this.list.length > MAX_EVENTS) this.list.splice(0, this.list.length - MAX_EVENTS).forEach((e) => this.seen.delete(dedupKey(e)));
    return event;
  }

  all(filter?: { metric?: string; profileId?: string }): StoredEvent[] {
    if (!filter?.metric && !filter?.profileId) return this.list.slice();
    return this.list.filter((e) => (!filter.metric || e.metric === filter.metric) && (!filter.profileId || e.profileId === filter.profileId));
  }

  latest(metric: string, n: number): StoredEvent[] {
    const out: StoredEvent[] = [];
    for (let i = this.list.length - 1; i >= 0 && out.length < n; i--) if (this.list[i].metric === metric) out.push(this.list[i]);
    return out;
  }

  clear(): void {
    this.metrics.clear();
    this.list = [];
    this.seen.clear();
  }

  load(metrics: Metric[], events: StoredEvent[]): void {
    this.clear();
    for (const m of metrics) this.metrics.set(m.name, m);
    this.list = events.slice();
    for (const e of events) this.seen.add(dedupKey(e));
  }
}

function dedupKey(e: { profileId: string; metric: string; unique_id?: string; time: string }): string {
  return `${e.profileId}\u0000${e.metric}\u0000${e.unique_id ?? `@${e.time.slice(0, 19)}`}`;
}
