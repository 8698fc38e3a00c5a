/**
 * The options object of `openStore` (and the snapshot functions' options),
 * read and checked once: a bad option is INVALID_OPTIONS naming it, before
 * anything is opened or written. Also the JSON helpers every part uses.
 */
import type { SessileError } from "../errors.js";
import { DEFAULT_MAX_BYTES, MAX_BYTES_LIMIT } from "../limits.js";
import { utf8Length } from "../utf8.js";
import { fail, invalidState, messageOf } from "./errors.js";
import type { StoreEvent, StoreOptions } from "../store-types.js";

/** Which backend holds the slots. */
export type BackendKind = "indexeddb" | "localstorage" | "memory";

/** The envelope options as the wasm codec takes them. */
export interface CodecOptions {
  compressAbove: number;
  maxBytes: number;
  compressionLevel: number;
}

/** Everything `openStore` was asked for. */
export interface Options {
  name: string;
  /** undefined is "auto": IndexedDB, then localStorage, then memory. */
  storage: BackendKind | undefined;
  debounceMs: number;
  schemaVersion: number;
  /** `{ [v]: (state) => state }`: migrates schema v to v + 1. */
  migrate: Record<number, unknown> | undefined;
  initial: unknown;
  onEvent: ((event: StoreEvent) => void) | undefined;
  persist: boolean;
  codec: CodecOptions;
  /** Set by a synced session ({@link REBASE_UNSAVED}): another tab's copy taken, this tab's unsaved changes go back on top. */
  rebaseUnsaved: boolean;
}

/**
 * The options key (not part of the public options) with which a synced
 * session asks its store to put this tab's unsaved changes back on top of
 * another tab's stored copy when it takes one, instead of letting them lose.
 */
export const REBASE_UNSAVED: unique symbol = Symbol("sessile.rebaseUnsaved");

export const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const U32_MAX = 4_294_967_295;

export const invalid = (option: string, reason: string): SessileError =>
  fail("INVALID_OPTIONS", `invalid option \`${option}\`: ${reason}`);

/** `options[key]`, undefined when absent or null. */
export function get(options: unknown, key: string): unknown {
  if (options === null || typeof options !== "object") return undefined;
  const v = (options as Record<string, unknown>)[key];
  return v === null ? undefined : v;
}

/** An optional whole-number option from 0 to `max`. */
export function integer(options: unknown, key: string, max: number): number | undefined {
  const v = get(options, key);
  if (v === undefined) return undefined;
  if (typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= max) return v;
  throw invalid(key, `must be a whole number from 0 to ${max}`);
}

/** `compressAbove`, `maxBytes` and `compressionLevel`, with their defaults. */
export function codecOptions(options: unknown): CodecOptions {
  const maxBytes = integer(options, "maxBytes", U32_MAX) ?? DEFAULT_MAX_BYTES;
  if (maxBytes === 0 || maxBytes > MAX_BYTES_LIMIT) {
    throw invalid("maxBytes", `must be between 1 and ${MAX_BYTES_LIMIT}`);
  }
  return {
    compressAbove: integer(options, "compressAbove", MAX_SAFE) ?? 10 * 1024,
    maxBytes,
    compressionLevel: integer(options, "compressionLevel", 9) ?? 1,
  };
}


/** `JSON.stringify(value)`, refusing what JSON cannot hold with INVALID_STATE. */
export function toJson(value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (e) {
    throw invalidState(messageOf(e));
  }
  if (typeof text !== "string") throw invalidState("the state must be a JSON value (got undefined or a function)");
  return text;
}

/** `JSON.parse(text)`, INVALID_STATE when it is not JSON. */
export function fromJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw invalidState(messageOf(e));
  }
}

export function storeOptions(options: unknown): Options {
  if (options === null || typeof options !== "object") {
    throw invalid("options", "openStore needs an options object with a `name`");
  }
  const name = get(options, "name");
  if (typeof name !== "string") throw invalid("name", "must be a non-empty string");
  // eslint-disable-next-line no-control-regex
  if (name === "" || utf8Length(name) > 100 || /[\u0000-\u001f\u007f-\u009f]/.test(name)) {
    throw invalid("name", "must be 1 to 100 characters, none of them control characters");
  }
  const storage = get(options, "storage");
  if (storage !== undefined && typeof storage !== "string") throw invalid("storage", "must be a string");
  if (storage !== undefined && !["auto", "indexeddb", "localstorage", "memory"].includes(storage)) {
    throw invalid("storage", 'must be "auto", "indexeddb", "localstorage" or "memory"');
  }
  const onEvent = get(options, "onEvent");
  if (onEvent !== undefined && typeof onEvent !== "function") throw invalid("onEvent", "must be a function");
  const migrate = get(options, "migrate");
  if (migrate !== undefined && typeof migrate !== "object") {
    throw invalid("migrate", "must be an object of functions keyed by schema version");
  }
  const persist = get(options, "persist");
  return {
    name,
    storage: storage === "auto" ? undefined : (storage as BackendKind | undefined),
    debounceMs: integer(options, "debounceMs", 60_000) ?? 250,
    schemaVersion: integer(options, "schemaVersion", U32_MAX) ?? 1,
    migrate: migrate as Record<number, unknown> | undefined,
    initial: get(options, "initial") ?? null,
    onEvent: onEvent as Options["onEvent"],
    persist: typeof persist === "boolean" ? persist : true,
    codec: codecOptions(options),
    rebaseUnsaved: (options as { [REBASE_UNSAVED]?: unknown })[REBASE_UNSAVED] === true,
  };
}
