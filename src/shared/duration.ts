/** Milliseconds in a duration such as `30s`, `15m`, `12h`, `7d` or `2w`; `undefined` when it is not one. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/.exec(String(text).trim());
  if (!m) return undefined;
  const unit = { ms: 1, s: 1e3, m: 6e4, h: 36e5, d: 864e5, w: 6048e5 }[m[2] as 'ms'];
  return Math.round(Number(m[1]) * unit);
}
