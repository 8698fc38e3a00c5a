/**
 * Picks the backend: the one the page named (and only that one: a page that
 * asked for IndexedDB gets STORAGE_UNAVAILABLE, not a silent fallback), or
 * with "auto" the first of IndexedDB, localStorage, memory that opens and
 * answers, with the reasons the others were passed over.
 */
import type { SessileError } from "../../errors.js";
import { coded } from "../errors.js";
import type { BackendKind } from "../options.js";
import type { Backend } from "./backend.js";
import { openIndexedDb } from "./indexeddb.js";
import { openLocal } from "./local.js";
import { openMemory } from "./memory.js";

/** A backend that could not be used, and why. */
export interface Degradation {
  kind: BackendKind;
  error: SessileError;
}

const OPEN: Record<BackendKind, (ns: string) => Backend | Promise<Backend>> = {
  indexeddb: openIndexedDb,
  localstorage: openLocal,
  memory: openMemory,
};

export async function openBackend(
  ns: string,
  wanted: BackendKind | undefined,
): Promise<{ backend: Backend; degraded: Degradation[] }> {
  const chain: BackendKind[] = wanted ? [wanted] : ["indexeddb", "localstorage", "memory"];
  const degraded: Degradation[] = [];
  for (const kind of chain) {
    try {
      return { backend: await OPEN[kind](ns), degraded };
    } catch (e) {
      if (wanted) throw coded(e);
      degraded.push({ kind, error: coded(e) });
    }
  }
  // Unreachable in practice: memory always opens.
  throw coded(new Error("no storage backend could be opened"));
}
