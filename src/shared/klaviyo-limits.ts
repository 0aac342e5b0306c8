// Klaviyo's published rate limits for every operation the project calls, keyed by the spec's operationId, with
// the method and path template that identify a request. Klaviyo counts each operation per account in a fixed
// 1 s window (burst) and a fixed 60 s window (steady); a few operations also have a daily cap.
// Source: https://developers.klaviyo.com/en/docs/rate_limits_and_error_handling and each operation's
// `x-klaviyo-ratelimit` in the vendored OpenAPI spec (test/shared/klaviyo-limits.test.ts compares them).

export interface RateLimit {
  /** Requests per 1 s window. */
  burst: number;
  /** Requests per 60 s window. */
  steady: number;
  /** Requests per day, where Klaviyo sets one. */
  daily?: number;
}

export interface KlaviyoOperation extends RateLimit {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** Path template as in the spec, e.g. `/api/lists/{id}`. */
  path: string;
}

export const KLAVIYO_OPERATIONS = {
  // The snippet (Client API, public key).
  create_client_event: { method: 'POST', path: '/client/events', burst: 350, steady: 3500 },
  create_client_profile: { method: 'POST', path: '/client/profiles', burst: 350, steady: 3500 },
  bulk_create_client_events: { method: 'POST', path: '/client/event-bulk-create', burst: 10, steady: 150 },
  // Forwarding server-side events.
  create_event: { method: 'POST', path: '/api/events', burst: 350, steady: 3500 },
  bulk_create_events: { method: 'POST', path: '/api/event-bulk-create-jobs', burst: 10, steady: 150 },
  create_or_update_profile: { method: 'POST', path: '/api/profile-import', burst: 75, steady: 750 },
  update_profile: { method: 'PATCH', path: '/api/profiles/{id}', burst: 75, steady: 750 },
  // Audience syncs.
  get_lists: { method: 'GET', path: '/api/lists', burst: 75, steady: 750 },
  create_list: { method: 'POST', path: '/api/lists', burst: 10, steady: 150, daily: 150 },
  get_list: { method: 'GET', path: '/api/lists/{id}', burst: 75, steady: 750 },
  remove_profiles_from_list: { method: 'DELETE', path: '/api/lists/{id}/relationships/profiles', burst: 10, steady: 150 },
  get_profiles: { method: 'GET', path: '/api/profiles', burst: 75, steady: 750 },
  bulk_import_profiles: { method: 'POST', path: '/api/profile-bulk-import-jobs', burst: 10, steady: 150 },
  get_bulk_import_profiles_job: { method: 'GET', path: '/api/profile-bulk-import-jobs/{job_id}', burst: 10, steady: 150 },
  get_errors_for_bulk_import_profiles_job: { method: 'GET', path: '/api/profile-bulk-import-jobs/{id}/import-errors', burst: 10, steady: 150 },
  bulk_subscribe_profiles: { method: 'POST', path: '/api/profile-subscription-bulk-create-jobs', burst: 75, steady: 750 },
  bulk_unsubscribe_profiles: { method: 'POST', path: '/api/profile-subscription-bulk-delete-jobs', burst: 75, steady: 750 },
  // Connection checks and Verify events.
  get_accounts: { method: 'GET', path: '/api/accounts', burst: 1, steady: 15 },
  get_metrics: { method: 'GET', path: '/api/metrics', burst: 10, steady: 150 },
  query_metric_aggregates: { method: 'POST', path: '/api/metric-aggregates', burst: 3, steady: 60 },
} as const satisfies Record<string, KlaviyoOperation>;

export type OperationId = keyof typeof KLAVIYO_OPERATIONS;
