/** The Klaviyo API revision every request carries (the OpenAPI spec vendored in openapi/). */
export const KLAVIYO_REVISION = '2026-07-15';
export const DEFAULT_KLAVIYO_URL = 'https://a.klaviyo.com';
