// How an answer from Klaviyo is treated, the same on both sides: 2xx done; a network error or timeout, 408, 429 and
// 5xx are worth another attempt; any other 4xx is final (the request itself is wrong and resending cannot help).
// Plain code, no zod: the snippet imports it and pays for every byte.

export type StatusClass = 'ok' | 'retry' | 'drop';

/** 0 stands for a network error or timeout (no HTTP answer). */
export const statusClass = (status: number): StatusClass =>
  status > 199 && status < 300 ? 'ok' : !status || status == 408 || status == 429 || status > 499 ? 'retry' : 'drop';
