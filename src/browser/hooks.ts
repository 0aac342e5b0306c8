// on('queued'|'sent'|'retry'|'dropped'|'error', cb). A throwing callback is reported, never rethrown into the page;
// so is a failing call or flush (`fail`).
import type { HookInfo, HookName } from './types.js';

export type Hooks = ReturnType<typeof createHooks>;

export function createHooks(debug: () => boolean | undefined) {
  const subs: Partial<Record<HookName, Set<(info: HookInfo) => void>>> = {};
  const hooks = {
    on(hook: HookName, cb: (info: HookInfo) => void) {
      (subs[hook] ||= new Set()).add(cb);
      return () => void subs[hook]!.delete(cb);
    },
    emit(hook: HookName, info: HookInfo) {
      if (debug()) console.debug('klaviyo-relay', hook, info);
      subs[hook]?.forEach((cb) => {
        try {
          cb(info);
        } catch (e) {
          console.error('klaviyo-relay: an on(' + hook + ') callback threw', e);
        }
      });
    },
    /** `what` failed unexpectedly: logged and reported on 'error'. */
    fail(what: string, error: unknown) {
      console.error(`klaviyo-relay: ${what}() failed`, error);
      hooks.emit('error', { reason: String(error) });
    },
  };
  return hooks;
}
