/** One RFC 6902 operation, as fast-json-patch's `compare` writes it. */
export type PatchOperation =
  | { op: 'add'; path: string; value: unknown }
  | { op: 'replace'; path: string; value: unknown }
  | { op: 'remove'; path: string };

/**
 * The JSONPatch from `before` to `after`: the same operations, in the same order, as
 * fast-json-patch's `compare(before, after)`, whose walk this follows step by step.
 * `compare` deep-clones every value it puts in an operation (a JSON round trip each), and
 * that was the webhook's largest single cost (docs/BENCHMARKS.md); the patch is only ever
 * serialised, so the values here are the mutated pod's own objects, which serialise to
 * the same bytes.
 * Subtrees the mutation kept by identity are skipped without a look inside.
 */
export function diffPatch(before: object, after: object): PatchOperation[] {
  const operations: PatchOperation[] = [];
  generate(before as Json, after as Json, '', operations);
  return operations;
}

type Json = Record<string, unknown> | unknown[];

function generate(before: Json, after: Json, path: string, out: PatchOperation[]): void {
  if (before === after) return;
  const afterIsArray = Array.isArray(after);
  const beforeIsArray = Array.isArray(before);
  const newKeys = keysOf(after);
  const oldKeys = keysOf(before);
  let deleted = false;
  // Backwards, so removing array items by index stays valid as the patch is applied.
  for (let t = oldKeys.length - 1; t >= 0; t--) {
    const key = oldKeys[t]!;
    const oldVal = (before as Record<string, unknown>)[key];
    const newVal = (after as Record<string, unknown>)[key];
    if (Object.hasOwn(after, key) && !(newVal === undefined && oldVal !== undefined && !afterIsArray)) {
      if (isObject(oldVal) && isObject(newVal) && Array.isArray(oldVal) === Array.isArray(newVal)) {
        generate(oldVal, newVal, `${path}/${escape(key)}`, out);
      } else if (oldVal !== newVal) {
        out.push({ op: 'replace', path: `${path}/${escape(key)}`, value: asValue(newVal) });
      }
    } else if (beforeIsArray === afterIsArray) {
      out.push({ op: 'remove', path: `${path}/${escape(key)}` });
      deleted = true;
    } else {
      out.push({ op: 'replace', path, value: after });
    }
  }
  if (!deleted && newKeys.length === oldKeys.length) return;
  for (const key of newKeys) {
    const value = (after as Record<string, unknown>)[key];
    if (!Object.hasOwn(before, key) && value !== undefined) {
      out.push({ op: 'add', path: `${path}/${escape(key)}`, value: asValue(value) });
    }
  }
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null;
}

function keysOf(value: Json): string[] {
  if (!Array.isArray(value)) return Object.keys(value);
  const keys = new Array<string>(value.length);
  for (let i = 0; i < value.length; i++) keys[i] = String(i);
  return keys;
}

// What compare's clone makes of a missing array item: null, as JSON.stringify writes it.
function asValue(value: unknown): unknown {
  return value === undefined ? null : value;
}

// RFC 6901: "~" and "/" in a key are escaped in a JSON Pointer.
function escape(key: string): string {
  return key.includes('/') || key.includes('~') ? key.replaceAll('~', '~0').replaceAll('/', '~1') : key;
}
