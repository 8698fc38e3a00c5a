/**
 * The store's public types: the options of `openStore`, its events, what
 * `diagnostics()` reports, and the `Store<T>` a page holds.
 */

/** Options of openStore. Only `name` is required. */
export interface StoreOptions {
  /** Storage namespace (1-100 characters). */
  name: string;
  /** Where to keep the state. "auto" (default) tries IndexedDB, then localStorage, then memory. */
  storage?: "auto" | "indexeddb" | "localstorage" | "memory";
  /** Delay between the last change and its write, ms (default 250, at most 60000); a synced session's change is written at once. */
  debounceMs?: number;
  /** The page's state schema version (default 1). */
  schemaVersion?: number;
  /** migrate[v] turns a stored state of schema v into schema v + 1. */
  migrate?: Record<number, (state: any) => unknown>;
  /** The state when nothing valid is stored (default null). */
  initial?: unknown;
  /** Receives every event: { type, ...fields }. */
  onEvent?: (event: StoreEvent) => void;
  /** Ask the browser to keep this origin's storage (navigator.storage.persist()); default true. */
  persist?: boolean;
  /** Deflate the JSON above this many bytes (default 10240). */
  compressAbove?: number;
  /** Refuse states larger than this many bytes of JSON (default 5 MiB). */
  maxBytes?: number;
  /** Deflate level 0-9 (default 1). */
  compressionLevel?: number;
}

/** An error as events carry it. */
export interface EventError {
  code: string;
  message: string;
}

/** Events of a store. */
export type StoreEvent =
  | {
      type: "state_restored";
      outcome: "restored";
      from: "a" | "b" | "rescue";
      version: number;
      schemaVersion: number;
      migrated: boolean;
      skipped: { slot: string; error: EventError }[];
    }
  | { type: "state_restored"; outcome: "fresh" }
  | { type: "state_restored"; outcome: "evicted"; lastVersion: string; reason: string }
  | { type: "state_restored"; outcome: "unreadable"; skipped: { slot: string; error: EventError }[] }
  | { type: "storage_degraded"; backend: string; using: string; error: EventError }
  | { type: "error_occurred"; error: EventError; during: "restore" | "write" | "sync" }
  | {
      type: "conflict";
      local: unknown;
      remote: unknown;
      winner: "remote" | "local";
      localVersion: number;
      remoteVersion: number;
    }
  | { type: "session_updated"; origin: "tab"; version: number; cleared?: boolean };

/** What diagnostics() reports. */
export interface StoreDiagnostics {
  name: string;
  backend: "indexeddb" | "localstorage" | "memory";
  /** navigator.storage.persisted(): true, false, or null when unknown. */
  durable: boolean | null;
  /** Whether writes are serialized across tabs by Web Locks. */
  webLocks: boolean;
  degraded: { backend: string; error: EventError }[];
  version: number;
  storedVersion: number;
  /**
   * Changes not yet handed to a write: true from a change until its write
   * starts, and again when that write fails (it is tried again later). In a
   * synced session a change's write starts at once, so `unsaved` is false
   * right after `update()` and `writing` true; a refused write shows only
   * when the storage answers (`lastError`, `error_occurred`). The state is
   * stored when `storedVersion` equals `version`.
   */
  unsaved: boolean;
  /** A write is under way (handed to the storage, not yet answered). */
  writing: boolean;
  rawBytes: number;
  /**
   * The copy this page last wrote, else the slot it restored from at open
   * (written by an earlier page; `at` is when). Null before either (and
   * when the state came from a rescue copy, until it is written back), and
   * after `clear()`.
   */
  lastWrite: null | {
    slot: string;
    generation: number;
    checksum: string;
    storedBytes: number;
    compressed: boolean;
    at: number;
  };
  lastError: EventError | null;
  /** Why writing stopped (a newer schema was stored by a newer page), or null. */
  blocked: EventError | null;
}

/** A namespace's persisted state of type `T` (see {@link Sessile.openStore}). */
export interface Store<T> {
  /** The current state: restored, set, or taken from another tab. */
  readonly state: T;
  /** The current state version. */
  readonly version: number;
  /** Replaces the state; returns the new version. Throws STATE_TOO_LARGE / INVALID_STATE, and STORE_CLOSED once close() was called. */
  set(state: T): number;
  /** Writes anything unsaved now; resolves when the bytes are stored. */
  flush(): Promise<void>;
  /** Removes every stored copy of this namespace. */
  clear(): Promise<void>;
  /** Refuses further changes, flushes, then releases listeners and the tab channel. */
  close(): Promise<void>;
  /** Backend, durability, versions, sizes, last write and error. */
  diagnostics(): StoreDiagnostics;
}

/** Options of {@link Sessile.openStore} with the state typed as `T`. */
export type TypedStoreOptions<T> = Omit<StoreOptions, "initial"> & { initial: T };
