// The sandbox's whole account: metrics and events, profiles, lists and bulk jobs, with the views the tests,
// the admin API and the QA page read, and a JSON snapshot for persistence between runs.
import { EventStore, type Metric, type StoredEvent } from './events.js';
import { JobStore, type Job } from './jobs.js';
import { ListStore, type List } from './lists.js';
import { ProfileStore, type Profile } from './profiles.js';

export interface ListView {
  id: string;
  name: string;
  opt_in_process: 'double_opt_in' | 'single_opt_in';
  created: string;
  profileIds: string[];
  pendingProfileIds: string[];
  unsubscribedProfileIds: string[];
}

export type ProfileView = Omit<Profile, 'attributes'> & Record<string, unknown>;

export interface Snapshot {
  version: 1;
  metrics: Metric[];
  events: StoredEvent[];
  profiles: Profile[];
  lists: Array<Omit<List, 'members' | 'pending' | 'unsubscribed'> & { members: [string, string][]; pending: [string, string][]; unsubscribed: [string, string][] }>;
  jobs: Job[];
}

export class EmulatorState {
  readonly events = new EventStore();
  readonly profiles = new ProfileStore();
  readonly lists = new ListStore();
  readonly jobs: JobStore;

  constructor(jobDelayMs: number) {
    this.jobs = new JobStore(jobDelayMs);
  }

  profileView(p: Profile): ProfileView {
    const { attributes, ...rest } = p;
    return structuredClone({ ...attributes, ...rest });
  }

  listView(l: List): ListView {
    return {
      id: l.id,
      name: l.name,
      opt_in_process: l.opt_in_process,
      created: l.created,
      profileIds: [...l.members.keys()],
      pendingProfileIds: [...l.pending.keys()],
      unsubscribedProfileIds: [...l.unsubscribed.keys()],
    };
  }

  listMembers(listId: string): ProfileView[] {
    const list = this.lists.get(listId);
    if (!list) return [];
    return [...list.members.keys()].map((id) => this.profiles.get(id)).filter((p): p is Profile => !!p).map((p) => this.profileView(p));
  }

  reset(): void {
    this.events.clear();
    this.profiles.clear();
    this.lists.clear();
    this.jobs.clear();
  }

  snapshot(): Snapshot {
    return {
      version: 1,
      metrics: [...this.events.metrics.values()],
      events: this.events.all(),
      profiles: this.profiles.all(),
      lists: this.lists.all().map((l) => ({ ...l, members: [...l.members], pending: [...l.pending], unsubscribed: [...l.unsubscribed] })),
      // Unfinished jobs cannot resume after a restart (their work is a closure); keep finished ones.
      jobs: this.jobs.all().filter((j) => j.status === 'complete'),
    };
  }

  restore(s: Snapshot): void {
    this.reset();
    this.events.load(s.metrics ?? [], s.events ?? []);
    this.profiles.load(s.profiles ?? []);
    for (const l of s.lists ?? []) {
      this.lists.byId.set(l.id, { ...l, members: new Map(l.members), pending: new Map(l.pending), unsubscribed: new Map(l.unsubscribed) });
    }
    for (const j of s.jobs ?? []) this.jobs.byId.set(j.id, j);
  }
}
