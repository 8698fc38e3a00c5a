/**
 * The page's schema migrations on a stored state: `migrate[v]` turns a
 * state of schema v into schema v + 1. A newer stored schema is
 * SCHEMA_TOO_NEW (an older page must not overwrite it), a missing or
 * throwing migration MIGRATION_FAILED; in both cases nothing is written, so
 * the stored copy stays as it was.
 */
import { fail, messageOf } from "./errors.js";
import { fromJson, toJson } from "./options.js";

/** The state at schema `current` (parsed and as JSON), and whether it changed. */
export function migrate(
  json: string,
  stored: number,
  current: number,
  migrations: Record<number, unknown> | undefined,
): { state: unknown; json: string; migrated: boolean } {
  if (stored > current) {
    throw fail(
      "SCHEMA_TOO_NEW",
      `stored state has schema version ${stored}, newer than this page's ${current}; it was left untouched`,
    );
  }
  let state = fromJson(json);
  if (stored === current) return { state, json, migrated: false };
  for (let from = stored; from < current; from++) {
    const failed = (reason: string) => fail("MIGRATION_FAILED", `migration from schema version ${from} failed: ${reason}`);
    const f = migrations?.[from];
    if (typeof f !== "function") throw failed(`no migration function migrate[${from}]`);
    try {
      state = f(state);
    } catch (e) {
      throw failed(messageOf(e));
    }
    if (state === undefined) throw failed("the migration returned undefined");
  }
  const out = toJson(state);
  // The page keeps what a reload would give: the state as JSON holds it.
  return { state: fromJson(out), json: out, migrated: true };
}
