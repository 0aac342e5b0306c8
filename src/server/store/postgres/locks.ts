// PostgreSQL advisory locks the relay takes, as (namespace, key) pairs so they cannot collide with another
// application's locks on the same database. Add a key here for each new lock; never reuse a number.
export const ADVISORY_LOCK_NAMESPACE = 0x6b6c7679; // "klvy"

export const ADVISORY_LOCKS = {
  /** Held while schema migrations run, so instances starting together migrate one after another. */
  migrations: 1,
  /** Held by the one instance that forwards the outbox to Klaviyo (its session connection keeps it). */
  forwarder: 2,
} as const;
