// Where sync definitions live: the config file, overridden by ones saved through the admin API (same name).
import type { AudienceStore } from '../store/audience-types.js';
import { describeIssues, suggestKnownKeys } from '../../shared/zod-issues.js';
import { audienceDefinitionSchema, type AudienceDefinition } from './definition.js';

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

/** Definitions saved in the store are shared by every instance on it; each read sees the latest save. */
export function definitionRegistry(store: AudienceStore, fromConfig: AudienceDefinition[]) {
  const saved = async (): Promise<Map<string, AudienceDefinition>> => {
    const out = new Map<string, AudienceDefinition>();
    for (const row of await store.savedDefinitions()) {
      const parsed = audienceDefinitionSchema.safeParse(row.definition);
      if (parsed.success) out.set(row.name, parsed.data);
    }
    return out;
  };
  return {
    async all(): Promise<{ definition: AudienceDefinition; origin: DefinitionOrigin }[]> {
      const api = await saved();
      const list: { definition: AudienceDefinition; origin: DefinitionOrigin }[] = fromConfig.filter((d) => !api.has(d.name)).map((definition) => ({ definition, origin: 'config' }));
      for (const definition of api.values()) list.push({ definition, origin: 'api' });
      return list.sort((a, b) => a.definition.name.localeCompare(b.definition.name));
    },
    async get(name: string): Promise<{ definition: AudienceDefinition; origin: DefinitionOrigin } | undefined> {
      const api = (await saved()).get(name);
      if (api) return { definition: api, origin: 'api' };
      const definition = fromConfig.find((d) => d.name === name);
      return definition && { definition, origin: 'config' };
    },
    /** Save (create or replace) a definition; it overrides a config-file one of the same name. */
    put: (definition: AudienceDefinition) => store.saveDefinition(definition.name, definition),
  };
}

export type DefinitionRegistry = ReturnType<typeof definitionRegistry>;
