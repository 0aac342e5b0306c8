// on('queued'|'sent'|'retry'|'dropped'|'error', cb). A throwing callback is reported, never rethrown into the page.
import type { HookInfo, HookName } from './types.js';

export function createHooks(debug: () => boolean | undefined) {
  const subs: Partial<Record<HookName, Set<(info: HookInfo) => void>>> = {};
  return {
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
  };
}
