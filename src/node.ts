/** The Node entry point: everything in the browser-safe API plus Dawn and file-system helpers. */
export * from './index.js';
export { createDawnGpu, createNodeGpuContext, type NodeGpuOptions } from './gpu/node.js';
export * from './io/node-files.js';
export { BUNDLED_WEIGHTS_PATH } from './pipeline/node-bundled.js';
