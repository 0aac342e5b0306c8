// Lists: GET/POST /api/lists, GET /api/lists/{id}, members, and adding/removing members.
import { ApiError } from '../errors.js';
import { matches } from '../filter.js';
import { defaultPageSize } from '../query.js';
import type { List } from '../state/lists.js';
import type { Profile } from '../state/profiles.js';
import { limit, noContent, paginate, type Handler, type HandlerContext } from './context.js';
import { lowerEmailConditions, profileField, subscriptionsOption } from './profiles.js';
import { listResource, profileResource } from './resources.js';

export const MAX_PROFILES_PER_LIST_CALL = 1000;

function listField(l: List, field: string): unknown {
  if (field === 'name' || field === 'id' || field === 'created' || field === 'updated') return l[field];
  return undefined;
}

export function listHandlers(ctx: HandlerContext): Record<string, Handler> {
  const { state, spec } = ctx;

  /** The profiles a relationship body names; every one must exist, so nothing is half-applied. */
  const profilesOf = (data: Array<{ id: string }>): Profile[] => {
    limit(data, MAX_PROFILES_PER_LIST_CALL, '/data', 'profiles');
    return data.map((ref, i) => {
      const p = state.profiles.get(ref.id);
      if (!p) throw new ApiError(404, 'not_found', `A profile with id '${ref.id}' does not exist.`, { pointer: `/data/${i}/id` });
      return p;
    });
  };

  const members = (list: List, conditions: ReturnType<typeof lowerEmailConditions>) =>
    [...list.members]
      .map(([id, joined]) => ({ profile: state.profiles.get(id)!, joined }))
      .filter(({ profile, joined }) => profile && matches(conditions, (f) => (f === 'joined_group_at' ? joined : profileField(profile, f))));

  return {
    get_lists: (req) => {
      let lists = state.lists.all().filter((l) => matches(req.query.filter, (f) => listField(l, f)));
      if (req.query.sort) {
        const key = req.query.sort.replace(/^-/, '');
        const dir = req.query.sort.startsWith('-') ? -1 : 1;
        lists = lists.sort((a, b) => String(listField(a, key)).localeCompare(String(listField(b, key))) * dir);
      }
      const { page, links } = paginate(lists, req, req.query.pageSize ?? defaultPageSize(spec, req.operation));
      return { status: 200, body: { data: page.map((l) => listResource(l, req.baseUrl)), links } };
    },

    get_list: (req) => {
      const list = state.lists.require(req.params.id);
      const withCount = (req.query.raw.get('additional-fields[list]') ?? '').split(',').includes('profile_count');
      return { status: 200, body: { data: listResource(list, req.baseUrl, withCount), links: { self: `${req.baseUrl}/api/lists/${list.id}` } } };
    },

    create_list: (req) => {
      const a = req.body.data.attributes;
      const list = state.lists.create(a.name, a.opt_in_process ?? 'double_opt_in');
      return { status: 201, body: { data: listResource(list, req.baseUrl), links: { self: `${req.baseUrl}/api/lists/${list.id}` } } };
    },

    get_profiles_for_list: (req) => {
      const list = state.lists.require(req.params.id);
      let rows = members(list, lowerEmailConditions(req));
      if (req.query.sort === '-joined_group_at') rows = rows.reverse();
      const { page, links } = paginate(rows, req, req.query.pageSize ?? defaultPageSize(spec, req.operation));
      const subscriptions = subscriptionsOption(req, state);
      return { status: 200, body: { data: page.map((r) => profileResource(r.profile, req.baseUrl, { subscriptions, joinedAt: r.joined })), links } };
    },

    get_profile_ids_for_list: (req) => {
      const list = state.lists.require(req.params.id);
      let rows = members(list, lowerEmailConditions(req));
      if (req.query.sort === '-joined_group_at') rows = rows.reverse();
      const { page, links } = paginate(rows, req, req.query.pageSize ?? defaultPageSize(spec, req.operation));
      return { status: 200, body: { data: page.map((r) => ({ type: 'profile', id: r.profile.id })), links } };
    },

    add_profiles_to_list: (req) => {
      const list = state.lists.require(req.params.id);
      for (const p of profilesOf(req.body.data)) state.lists.addMember(list, p.id);
      return noContent();
    },

    remove_profiles_from_list: (req) => {
      const list = state.lists.require(req.params.id);
      for (const p of profilesOf(req.body.data)) state.lists.removeMember(list, p.id);
      return noContent();
    },
  };
}
