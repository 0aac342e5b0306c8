// A sync definition (docs/audience-sync.md), validated with zod. Used by the config file and the admin API.
import { z } from 'zod';
import { parseDuration } from '../../shared/duration.js';

// abort: a value that is no duration at all gets this one message, not also "must be longer than 0".
const duration = z.string().refine((s) => parseDuration(s) !== undefined, { error: 'must be a duration such as "30m", "6h" or "7d"', abort: true });

const klaviyoField = z
  .string()
  .regex(
    /^(email|phone_number|external_id|first_name|last_name|organization|title|locale|image|location\.(address1|address2|city|country|region|zip|timezone|latitude|longitude|ip)|properties\.[^\s.].*)$/,
    { error: 'must be email, phone_number, external_id, first_name, last_name, organization, title, locale, image, location.<field> or properties.<custom>' },
  )
  .refine((field) => !/^properties\.(__proto__|constructor|prototype)$/.test(field), { error: 'cannot name a custom property __proto__, constructor or prototype' });

/** A value a rule compares with: one string, number or boolean (SQL compares scalars; a list or object never matches). */
const ruleValue = z.union([z.string(), z.number(), z.boolean()], {
  error: (issue) => `must be one string, number or boolean, not ${issue.input === null ? 'null (use "exists": false)' : Array.isArray(issue.input) ? 'an array (use "any" with one condition per value)' : `a ${typeof issue.input}`}`,
});

const comparison = z.strictObject({ gte: z.number().optional(), lte: z.number().optional(), eq: z.number().optional() });

const propertyFilter = z.strictObject({
  eq: ruleValue.optional(),
  contains: ruleValue.optional(),
  gt: z.number().optional(),
  lt: z.number().optional(),
});

const eventCondition = z.strictObject({
  event: z.string().min(1),
  count: comparison.optional(),
  within: duration.optional(),
  where: z.record(z.string(), propertyFilter).optional(),
});

const traitCondition = z.strictObject({
  trait: z.string().min(1),
  eq: ruleValue.optional(),
  contains: ruleValue.optional(),
  exists: z.boolean().optional(),
});

export type RuleNode =
  | { all: RuleNode[] }
  | { any: RuleNode[] }
  | { not: RuleNode }
  | z.infer<typeof eventCondition>
  | z.infer<typeof traitCondition>;

const RULE_SHAPES =
  'a rule is {"all": [rules]}, {"any": [rules]}, {"not": rule}, an event condition {"event", "count"?, "within"?, "where"?} or a trait condition {"trait", "eq" | "contains" | "exists"}';

/** The schema for one rule node, chosen by its key so an error names the part that is wrong, not "invalid input". */
function ruleShape(value: unknown): z.ZodType | undefined {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
  if ('all' in value) return z.strictObject({ all: z.array(ruleSchema).min(1) });
  if ('any' in value) return z.strictObject({ any: z.array(ruleSchema).min(1) });
  if ('not' in value) return z.strictObject({ not: ruleSchema });
  if ('event' in value) return eventCondition;
  if ('trait' in value) return traitCondition;
  return undefined;
}

export const ruleSchema: z.ZodType<RuleNode> = z.lazy(() =>
  z.unknown().transform((value, ctx) => {
    const shape = ruleShape(value);
    if (!shape) {
      ctx.addIssue({ code: 'custom', message: RULE_SHAPES });
      return z.NEVER;
    }
    const result = shape.safeParse(value);
    if (result.success) return result.data as RuleNode;
    for (const issue of result.error.issues) ctx.addIssue({ code: 'custom', message: issue.message, path: issue.path });
    return z.NEVER;
  }),
) as unknown as z.ZodType<RuleNode>;

/** A rule tree's bounds (levels of all/any/not; conditions in all): deeper trees overflow the validator's and the SQL compiler's recursion, and SQLite
 * refuses expressions deeper than 1,000 terms; no real segment comes near either. */
export const RULE_LIMITS = { depth: 16, conditions: 200 } as const;

/** Why a rule tree is too deep or too large, walked without recursion; undefined when it is within bounds. */
function ruleTreeProblem(rules: unknown): string | undefined {
  const stack: [unknown, number][] = [[rules, 1]];
  let conditions = 0;
  while (stack.length) {
    const [node, depth] = stack.pop()!;
    if (!node || typeof node !== 'object') continue;
    const children = 'all' in node ? node.all : 'any' in node ? node.any : 'not' in node ? [node.not] : undefined;
    if (Array.isArray(children)) {
      if (depth > RULE_LIMITS.depth) return `rules are nested more than ${RULE_LIMITS.depth} levels deep; flatten them with "all"/"any"`;
      for (const child of children) stack.push([child, depth + 1]);
    } else if (++conditions > RULE_LIMITS.conditions) return `rules hold more than ${RULE_LIMITS.conditions} conditions; split the audience or simplify its rules`;
  }
  return undefined;
}

const boundedRules = z
  .unknown()
  .superRefine((rules, ctx) => {
    const problem = ruleTreeProblem(rules);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  })
  .pipe(ruleSchema);

export const audienceDefinitionSchema = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, { error: 'use letters, digits, "-", "_" or "." (at most 64)' }),
    source: z.discriminatedUnion('type', [
      z.strictObject({ type: z.literal('segment'), rules: boundedRules }),
      z.strictObject({ type: z.literal('file'), path: z.string().min(1), format: z.enum(['csv', 'ndjson']).optional() }),
    ]),
    list: z.union([
      z.strictObject({ id: z.string().min(1) }),
      z.strictObject({
        create: z.string().min(1).max(255),
        /** Opt-in process of the list when it has to be created (Klaviyo's account default otherwise). */
        optInProcess: z.enum(['single_opt_in', 'double_opt_in']).optional(),
      }),
    ], { error: 'must be {"id": "<existing list id>"} or {"create": "<list name>"}' }),
    subscription: z.array(z.enum(['email', 'sms'])).min(1).default(['email']),
    consent: z.enum(['subscribed', 'never_subscribed', 'unsubscribed']).default('never_subscribed'),
    /**
     * With consent "unsubscribed": "list" (the default) unsubscribes members from this list only (Klaviyo takes
     * them off it and their consent elsewhere stands); "all" unsubscribes the chosen channels account-wide.
     */
    unsubscribeFrom: z.enum(['list', 'all']).optional(),
    mapping: z.array(z.strictObject({ from: z.string().min(1), to: klaviyoField })).default([]),
    allowAnonymous: z.boolean().default(false),
    excludeExternalId: z.boolean().default(false),
    enabled: z.boolean().default(true),
    // Zero would start the next run the moment one ends, forever.
    refreshInterval: duration.refine((s) => parseDuration(s)! > 0, { error: 'must be longer than 0, such as "6h"' }).optional(),
    defaultPhoneRegion: z.string().length(2).optional(),
    /**
     * Source field holding when the member gave consent (ISO time). When set, subscribe calls are historical
     * imports (no double opt-in message, no "added to list" flows) stamped with that time.
     */
    consentedAtField: z.string().min(1).optional(),
  })
  .superRefine((def, ctx) => {
    if (def.consent === 'never_subscribed' && def.subscription.includes('sms')) {
      ctx.addIssue({ code: 'custom', path: ['consent'], message: 'never_subscribed is allowed for email only; remove "sms" from subscription or choose subscribed/unsubscribed' });
    }
    if (def.unsubscribeFrom && def.consent !== 'unsubscribed') {
      ctx.addIssue({ code: 'custom', path: ['unsubscribeFrom'], message: 'only applies to consent "unsubscribed"; remove it or change consent' });
    }
    if (def.consentedAtField && def.consent !== 'subscribed') {
      ctx.addIssue({ code: 'custom', path: ['consentedAtField'], message: 'only applies to consent "subscribed"; remove it or change consent' });
    }
    if (new Set(def.subscription).size !== def.subscription.length) {
      ctx.addIssue({ code: 'custom', path: ['subscription'], message: 'lists a channel twice' });
    }
    const targets = new Set<string>();
    def.mapping.forEach((m, i) => {
      if (targets.has(m.to)) ctx.addIssue({ code: 'custom', path: ['mapping', i, 'to'], message: `"${m.to}" is mapped twice; map each Klaviyo field from one source field` });
      targets.add(m.to);
    });
    if (def.allowAnonymous && def.excludeExternalId) {
      ctx.addIssue({ code: 'custom', path: ['excludeExternalId'], message: 'cannot be combined with allowAnonymous: an anonymous member is keyed by external_id, so it would have no identifier left' });
    }
  });

export type AudienceDefinition = z.output<typeof audienceDefinitionSchema>;

/** Where an unsubscribed audience unsubscribes its members: this list unless the definition says all. */
export const unsubscribeScope = (def: AudienceDefinition): 'list' | 'all' => def.unsubscribeFrom ?? 'list';

/**
 * The settings that decide which consent call each member gets. When they change on an existing audience, every
 * current member is owed the new call at the next run.
 */
export const consentSettings = (def: AudienceDefinition): string =>
  JSON.stringify({
    consent: def.consent,
    unsubscribeFrom: def.consent === 'unsubscribed' ? unsubscribeScope(def) : undefined,
    subscription: [...def.subscription].sort(),
  });
export type AudienceDefinitionInput = z.input<typeof audienceDefinitionSchema>;
