// Where sync definitions live: the config file, overridden by ones saved through the admin API (same name).
import type { Db } from '../store/db.js';
import { describeIssues, suggestKnownKeys } from '../../shared/zod-issues.js';
import { audienceDefinitionSchema, type AudienceDefinition } from './definition.js';
import { migrateAudiences } from './store.js';

export class DefinitionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DefinitionError';
  }
}

/** Validate one definition; errors name each field (e.g. `- consent: never_subscribed is allowed for email only…`). */
export function parseDefinition(input: unknown): AudienceDefinition {
  const result = audienceDefinitionSchema.safeParse(input, { error: suggestKnownKeys });
  if (!result.success) throw new DefinitionError(`Invalid audience definition:\n- ${describeIssues(result.error, '\n- ')}`);
  return result.data;
}

export type DefinitionOrigin = 'config' | 'api';

export function definitionRegistry(db: Db, fromConfig: AudienceDefinition[]) {
  migrateAudiences(db);
  const saved = (): Map<string, AudienceDefinition> => {
    const out = new Map<string, AudienceDefinition>();
    for (const row of db.prepare<[], { name: string; definition: string }>('SELECT name, definition FROM audience_definitions').all()) {
      const parsed = audienceDefinitionSchema.safeParse(JSON.parse(row.definition));
      if (parsed.success) out.set(row.name, parsed.data);
    }
    return out;
  };
  return {
    all(): { definition: AudienceDefinition; origin: DefinitionOrigin }[] {
      const api = saved();
      const list: { definition: AudienceDefinition; origin: DefinitionOrigin }[] = fromConfig.filter((d) => !api.has(d.name)).map((definition) => ({ definition, origin: 'config' }));
      for (const definition of api.values()) list.push({ definition, origin: 'api' });
      return list.sort((a, b) => a.definition.name.localeCompare(b.definition.name));
    },
    get(name: string): { definition: AudienceDefinition; origin: DefinitionOrigin } | undefined {
      const api = saved().get(name);
      if (api) return { definition: api, origin: 'api' };
      const definition = fromConfig.find((d) => d.name === name);
      return definition && { definition, origin: 'config' };
    },
    /** Save (create or replace) a definition; it overrides a config-file one of the same name. */
    put(definition: AudienceDefinition) {
      db.prepare('INSERT INTO audience_definitions (name, definition, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET definition = excluded.definition, updated_at = excluded.updated_at')
        .run(definition.name, JSON.stringify(definition), Date.now());
    },
  };
}

export type DefinitionRegistry = ReturnType<typeof definitionRegistry>;
