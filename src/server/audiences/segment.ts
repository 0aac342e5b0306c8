// Segment sources: the store streams the profiles matching the rules; each becomes a source member with its
// traits, identifiers and computed fields.
import type { SegmentProfile } from '../store/audience-types.js';
import { SEGMENT_PROFILE_COLUMNS } from '../store/segment-rules.js';
import type { SourceMember } from './mapping.js';

/** One store profile as a source member: columns, `location.*`, custom traits (bare and as `properties.*`), computed fields. */
export function profileToMember(row: SegmentProfile): SourceMember {
  const { location, properties } = row;
  const member: SourceMember = { ...properties, location, properties };
  for (const c of SEGMENT_PROFILE_COLUMNS) if (row[c] !== null && row[c] !== undefined) member[c] = row[c];
  member.profile_id = row.id;
  member.first_seen = new Date(row.first_seen).toISOString();
  member.last_seen = new Date(row.last_seen).toISOString();
  member.last_event_time = row.last_event_time == null ? undefined : new Date(row.last_event_time).toISOString();
  member.event_count = row.event_count;
  return member;
}

/** Segment members are keyed by their stitched store profile, so a changed email is a change, not a new member. */
export const segmentMemberKey = (member: SourceMember) => `s:${member.profile_id}`;
