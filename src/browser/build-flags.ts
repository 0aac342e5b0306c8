// What this build of the snippet contains. The ESM build and the unit tests get everything; rollup.config.mjs swaps
// this module for each <script> variant (klaviyo-relay.min.js leaves the GA4 dataLayer bridge out, and rollup then
// drops the bridge's code as unreachable).
export const WITH_DATA_LAYER: boolean = true;
