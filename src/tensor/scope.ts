/** Anything a scope can free: tensors (and, in tests, stand-ins). */
export interface Freeable {
  dispose(): void;
}

/**
 * The open scopes, innermost last. A scope records what is created while its function runs,
 * which is only sound for synchronous code: forward passes record GPU work without waiting, so
 * nothing unrelated can be created between a scope's start and end.
 */
const open: Set<Freeable>[] = [];

/** Called by Tensor for every tensor (and view) it creates: the innermost scope owns it. */
export function trackInScope(value: Freeable): void {
  open[open.length - 1]?.add(value);
}

/**
 * Runs `fn` and frees everything created inside it except what it returns (a tensor, or arrays,
 * maps and plain objects holding tensors, at any depth); returned tensors pass to the enclosing
 * scope, if any. Tensors that existed before the scope are never touched. If `fn` throws,
 * everything it created is freed. Views share memory by reference count, so returning a view of
 * a freed intermediate keeps exactly that memory alive.
 */
export function scope<T>(fn: () => T): T {
  const owned = new Set<Freeable>();
  open.push(owned);
  let result: T;
  try {
    result = fn();
    if (result instanceof Promise) throw new Error('scope: the function returned a Promise; a scope records synchronous work only');
  } catch (e) {
    open.pop();
    for (const value of owned) value.dispose();
    throw e;
  }
  open.pop();
  const returned = new Set<Freeable>();
  collectOwned(result, owned, returned);
  for (const value of owned) if (!returned.has(value)) value.dispose();
  const parent = open[open.length - 1];
  if (parent) for (const value of returned) parent.add(value);
  return result;
}

/** Exempts a tensor from every open scope: the caller now frees it by hand. */
export function keep<T extends Freeable>(value: T): T {
  for (const owned of open) owned.delete(value);
  return value;
}

/**
 * Runs `fn` outside every open scope, so what it creates belongs to whoever called it; for user
 * callbacks (activation hooks, step callbacks) invoked from scoped model code.
 */
export function unscoped<T>(fn: () => T): T {
  const saved = open.splice(0, open.length);
  try {
    return fn();
  } finally {
    open.push(...saved);
  }
}

function collectOwned(value: unknown, owned: Set<Freeable>, into: Set<Freeable>): void {
  if (value === null || typeof value !== 'object') return;
  if (owned.has(value as Freeable)) {
    into.add(value as Freeable);
    return;
  }
  if (Array.isArray(value)) {
    for (const item of value) collectOwned(item, owned, into);
  } else if (value instanceof Map) {
    for (const item of value.values()) collectOwned(item, owned, into);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const item of Object.values(value)) collectOwned(item, owned, into);
  }
}

/**
 * Feeds `input` through `steps` in order, each in its own scope, and frees every intermediate
 * as soon as the step after it has returned (the input is the caller's). Peak memory is one
 * step's working set plus its input, as in a hand-freed chain.
 */
export function sequence<T extends Freeable>(input: T, steps: Iterable<(x: T) => T>): T {
  let h = input;
  for (const step of steps) {
    const next = scope(() => step(h));
    if (h !== input && h !== next) h.dispose();
    h = next;
  }
  return h;
}
