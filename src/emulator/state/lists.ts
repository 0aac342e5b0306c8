// Lists with their opt-in process, members, pending double opt-ins and list-level unsubscribes.
import { ApiError } from '../errors.js';
import { shortId } from '../ids.js';

export type OptInProcess = 'double_opt_in' | 'single_opt_in';

export interface List {
  id: string;
  name: string;
  opt_in_process: OptInProcess;
  created: string;
  updated: string;
  /** profileId → joined_group_at, in joining order. */
  members: Map<string, string>;
  /** profileId → when its double opt-in was requested. */
  pending: Map<string, string>;
  /** profileId → when it was unsubscribed from this list. */
  unsubscribed: Map<string, string>;
}

export class ListStore {
  readonly byId = new Map<string, List>();

  create(name: string, optIn: OptInProcess = 'double_opt_in'): List {
    const now = new Date().toISOString();
    let id = shortId();
    while (this.byId.has(id)) id = shortId();
    const list: List = { id, name, opt_in_process: optIn, created: now, updated: now, members: new Map(), pending: new Map(), unsubscribed: new Map() };
    this.byId.set(id, list);
    return list;
  }

  get(id: string): List | undefined {
    return this.byId.get(id);
  }

  /** 404 in Klaviyo's words when the list does not exist. */
  require(id: string, pointer?: string): List {
    const list = this.byId.get(id);
    if (!list) throw new ApiError(404, 'not_found', `A list with id '${id}' does not exist.`, pointer ? { pointer } : undefined);
    return list;
  }

  all(): List[] {
    return [...this.byId.values()];
  }

  addMember(list: List, profileId: string): void {
    if (!list.members.has(profileId)) list.members.set(profileId, new Date().toISOString());
    list.pending.delete(profileId);
    list.unsubscribed.delete(profileId);
    list.updated = new Date().toISOString();
  }

  removeMember(list: List, profileId: string): boolean {
    const was = list.members.delete(profileId);
    if (was) list.updated = new Date().toISOString();
    return was;
  }

  clear(): void {
    this.byId.clear();
  }
}
