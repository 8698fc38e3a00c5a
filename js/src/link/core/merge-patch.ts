/**
 * JSON merge patches (RFC 7386) as the client link uses them: apply one to
 * a value, compose two into one where the result is exact, and the patch
 * between two values. The same rules as the server's `src/core/merge_patch.rs`
 * (tests/fixtures/merge_patch_cases.json holds cases both must agree on).
 * Nothing here changes its arguments except `applyInPlace`, which says so.
 */

/** A JSON value. */
export type Json = null | boolean | number | string | Json[] | JsonObject;
/** A JSON object. */
export type JsonObject = { [key: string]: Json };

/** Whether `v` is a JSON object (not null, not an array). */
export function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

const own = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

/** Sets `o[k]` as an own property, even for `__proto__`. */
function put(o: JsonObject, k: string, v: Json): void {
  if (k === "__proto__") Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true });
  else o[k] = v;
}

/** A shallow copy of an object, own keys only (including `__proto__`). */
function copyOf(o: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const k of Object.keys(o)) put(out, k, o[k] as Json);
  return out;
}

/**
 * `target` with `patch` applied, as RFC 7386 section 2 defines: an object
 * patch merges key by key (`null` removes a key), anything else replaces
 * the target. Parts of `target` and `patch` the patch leaves alone are
 * shared with the result.
 */
export function apply(target: Json, patch: Json): Json {
  if (!isObject(patch)) return patch;
  const out = isObject(target) ? copyOf(target) : {};
  for (const k of Object.keys(patch)) {
    const v = patch[k] as Json;
    if (v === null) delete out[k];
    else put(out, k, apply(own(out, k) ? (out[k] as Json) : null, v));
  }
  return out;
}

/**
 * Applies `patch` to `target` in place and returns the result (a new value
 * when the patch replaces the root or the target is not an object). Nothing
 * of `patch` ends up shared with the result (values are copied), so a
 * target owned by the caller stays owned: the cost is the patch's size, not
 * the target's.
 */
export function applyInPlace(target: Json, patch: Json): Json {
  if (!isObject(patch)) return cloneJson(patch);
  const doc = isObject(target) ? target : {};
  for (const k of Object.keys(patch)) {
    const v = patch[k] as Json;
    if (v === null) delete doc[k];
    else put(doc, k, applyInPlace(own(doc, k) ? (doc[k] as Json) : null, v));
  }
  return doc;
}

/** A deep copy of a JSON value (own keys only, `__proto__` included). */
export function cloneJson(v: Json): Json {
  if (v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map(cloneJson);
  const out: JsonObject = {};
  for (const k of Object.keys(v)) put(out, k, cloneJson(v[k] as Json));
  return out;
}

/**
 * One patch with the effect of applying `first` and then `second`, or
 * `undefined` where no single merge patch has that effect (a key replaced
 * by a scalar or removed, then patched with an object: a merge patch cannot
 * say "replace with exactly this object"). Callers then keep both patches.
 */
export function compose(first: Json, second: Json): Json | undefined {
  if (!isObject(second)) return second;
  if (!isObject(first)) return undefined;
  const out = copyOf(first);
  for (const k of Object.keys(second)) {
    const vb = second[k] as Json;
    let composed: Json | undefined = vb;
    if (own(first, k) && isObject(vb)) {
      composed = compose(first[k] as Json, vb);
      if (composed === undefined) return undefined;
    }
    put(out, k, composed);
  }
  return out;
}

/**
 * The merge patch that turns `old` into `next`: keys removed become `null`,
 * changed values are set, nested objects are diffed key by key, equal keys
 * are left out (an empty object: nothing changed). A merge patch cannot set
 * a value to `null` (RFC 7386: `null` removes), so a key whose new value is
 * `null` is removed by the patch. Two non-objects: `next` itself.
 */
export function diff(old: Json, next: Json): Json {
  if (!isObject(old) || !isObject(next)) return next;
  const out: JsonObject = {};
  for (const k of Object.keys(old)) if (!own(next, k)) put(out, k, null);
  for (const k of Object.keys(next)) {
    const vb = next[k] as Json;
    if (!own(old, k)) {
      put(out, k, vb);
      continue;
    }
    const va = old[k] as Json;
    if (sameJson(va, vb)) continue;
    put(out, k, isObject(va) && isObject(vb) ? diff(va, vb) : vb);
  }
  return out;
}

/** Deep equality of two JSON values, whatever the order of object keys. */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  const ob = b as Record<string, unknown>;
  return ka.every((k) => own(ob, k) && sameJson((a as Record<string, unknown>)[k], ob[k]));
}

/** Applies an RFC 7386 merge patch to a copy of `target` (the page's `update(partial)`). */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  return apply(target as Json, patch as Json);
}
