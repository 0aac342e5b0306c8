// Bundler entry: `import { createRelay } from 'klaviyo-relay'`.
export { createRelay, IDENTIFY_EVENT, PAGE_EVENT } from './relay.js';
export { mapGa4 } from './datalayer.js';
export type * from './types.js';
export type { Workflow, Toggle } from '../shared/workflow.js';
