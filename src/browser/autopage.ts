// Page views on SPA navigation: pushState/replaceState are wrapped and popstate is watched. Only a change of path or
// query counts; hash jumps and same-URL replaceState calls do not.
export function watchHistory(onChange: () => void) {
  let last = location.pathname + location.search;
  const check = () => {
    const now = location.pathname + location.search;
    if (now != last) (last = now), onChange();
  };
  for (const method of ['pushState', 'replaceState'] as const) {
    const original = history[method];
    history[method] = function (this: History, ...args: Parameters<History['pushState']>) {
      const result = original.apply(this, args);
      check();
      return result;
    };
  }
  addEventListener('popstate', check);
}
