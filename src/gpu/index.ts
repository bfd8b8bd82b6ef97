export * from './errors.js';
export * from './context.js';
export { sizeClass, type PoolStats } from './buffer-pool.js';
