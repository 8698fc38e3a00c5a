/**
 * Who this tab is to the server: its client id (kept in sessionStorage so a
 * reload keeps it, guarded by a Web Lock held while the tab lives, adopted
 * from a closed tab whose outbox nobody holds) and the server session's
 * id and token (created with `POST /v1/sessions` on first use, remembered
 * per namespace in localStorage).
 */
import { SessileError } from "../errors.js";
import type { FlowDeclaration } from "../lifecycle/declared.js";

/** The server session a namespace is synced with. */
export interface ServerSession {
  id: string;
  token: string;
}

/** A client id and the release of the lock that guards it. */
export interface ClientIdentity {
  id: string;
  release(): void;
  /** Why the id is not guarded by a Web Lock, when the lock request failed unexpectedly (the page is told). */
  problem?: SessileError;
}

const ID = /^[0-9a-f]{32}$/;

function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function readJson<T>(storage: Storage | undefined, key: string): T | undefined {
  try {
    const text = storage?.getItem(key);
    return text ? (JSON.parse(text) as T) : undefined;
  } catch {
    return undefined;
  }
}

function writeJson(storage: Storage | undefined, key: string, value: unknown): void {
  try {
    if (value === undefined) storage?.removeItem(key);
    else storage?.setItem(key, JSON.stringify(value));
  } catch {
    // Storage disabled: the identity lasts as long as the page.
  }
}

function safeStorage(kind: "localStorage" | "sessionStorage"): Storage | undefined {
  try {
    return globalThis[kind];
  } catch {
    return undefined;
  }
}

/** What a lock request gave: the lock (and its release), "taken" by a live tab, or no working Web Locks. */
type Lock = { release: () => void } | "taken" | { unguarded: SessileError | undefined };

/** Holds the Web Lock `name` if nobody does. */
async function tryLock(name: string): Promise<Lock> {
  const locks = (navigator as Navigator & { locks?: LockManager }).locks;
  if (!locks) return { unguarded: undefined };
  return new Promise((resolve) => {
    locks
      .request(name, { ifAvailable: true }, (lock) => {
        if (!lock) {
          resolve("taken");
          return undefined;
        }
        return new Promise<void>((done) => resolve({ release: done }));
      })
      .catch((e: unknown) => {
        // Refused (SecurityError: site data blocked): as without Web Locks.
        // Anything else is the same for the id, but the page is told.
        const refused = e instanceof DOMException && e.name === "SecurityError";
        const why = e instanceof Error ? e.message : String(e);
        resolve({
          unguarded: refused ? undefined : new SessileError("STORAGE_UNAVAILABLE", `the client id's Web Lock could not be requested: ${why}`, { cause: e }),
        });
      });
  });
}

/**
 * This tab's client id for `namespace`: the one this tab had before a reload;
 * else one whose tab is gone (its outbox is resent under it, so the server
 * still dedupes); else a new random one. A duplicated tab (same
 * sessionStorage, lock held by the original) gets a new one. Without working
 * Web Locks no other tab's id is adopted (it may be live: two tabs sending
 * one id's sequence numbers would lose changes): only this tab's own or a
 * new one.
 */
export async function clientIdentity(namespace: string): Promise<ClientIdentity> {
  const session = safeStorage("sessionStorage");
  const local = safeStorage("localStorage");
  const listKey = `sessile:${namespace}:clients`;
  const known = (readJson<string[]>(local, listKey) ?? []).filter((c) => ID.test(c));
  const own = readJson<string>(session, `sessile:${namespace}:client`);
  const candidates = [...(own && ID.test(own) ? [own] : []), ...known.filter((c) => c !== own)];
  for (const id of candidates) {
    const lock = await tryLock(`sessile:${namespace}:client:${id}`);
    if (lock === "taken") continue;
    if ("release" in lock) return remember(id, lock.release);
    // No working locks: this tab's own id (a reload), else a new one.
    return remember(id === own ? id : randomId(), () => {}, lock.unguarded);
  }
  for (;;) {
    const id = randomId();
    const lock = await tryLock(`sessile:${namespace}:client:${id}`);
    if (lock === "taken") continue;
    return "release" in lock ? remember(id, lock.release) : remember(id, () => {}, lock.unguarded);
  }

  function remember(id: string, release: () => void, problem?: SessileError): ClientIdentity {
    writeJson(session, `sessile:${namespace}:client`, id);
    if (!known.includes(id)) writeJson(local, listKey, [...known, id].slice(-32));
    return problem ? { id, release, problem } : { id, release };
  }
}

/** Forgets client `id` of `namespace` (its outbox is empty and cleared). */
export function forgetClient(namespace: string, id: string): void {
  const local = safeStorage("localStorage");
  const listKey = `sessile:${namespace}:clients`;
  const known = readJson<string[]>(local, listKey) ?? [];
  writeJson(local, listKey, known.filter((c) => c !== id));
}

/** The client ids of `namespace` this browser knows (live tabs and closed ones whose id may be adopted). */
export function knownClients(namespace: string): string[] {
  return (readJson<string[]>(safeStorage("localStorage"), `sessile:${namespace}:clients`) ?? []).filter((c) => ID.test(c));
}

/** The server session remembered for `namespace`, if any. */
export function rememberedSession(namespace: string): ServerSession | undefined {
  const s = readJson<ServerSession>(safeStorage("localStorage"), `sessile:${namespace}:server`);
  return s && ID.test(s.id) && typeof s.token === "string" ? s : undefined;
}

/** Remembers (or, with undefined, forgets) the server session of `namespace`. */
export function rememberSession(namespace: string, s: ServerSession | undefined): void {
  writeJson(safeStorage("localStorage"), `sessile:${namespace}:server`, s);
}

/** A session's status and expiry as this browser last knew them. */
export interface KnownLifecycle {
  session: string;
  status: string;
  expiresAt: number;
}

/**
 * Remembers (or, with undefined, forgets) the lifecycle of `namespace`'s
 * session, so a reload, or a new tab, starts from it rather than from the
 * flow's initial status before the server has answered (or while offline).
 */
export function rememberLifecycle(namespace: string, l: KnownLifecycle | undefined): void {
  writeJson(safeStorage("localStorage"), `sessile:${namespace}:lifecycle`, l);
}

/** The lifecycle remembered for session `session` of `namespace`, if any. */
export function rememberedLifecycle(namespace: string, session: string): KnownLifecycle | undefined {
  const l = readJson<KnownLifecycle>(safeStorage("localStorage"), `sessile:${namespace}:lifecycle`);
  return l && l.session === session && typeof l.status === "string" && l.status !== "" && Number.isFinite(l.expiresAt)
    ? l
    : undefined;
}

/** Sends one JSON request to the server; the JSON answer, or a SessileError with the server's code. */
async function requestJson<A>(http: string, path: string, init: RequestInit, what: string): Promise<A> {
  let res: Response;
  try {
    res = await fetch(`${http.replace(/\/+$/, "")}${path}`, { ...init, cache: "no-store" });
  } catch (e) {
    throw new SessileError("SERVER_UNREACHABLE", `the sessile server at ${http} could not be reached`, {
      cause: e,
      retryable: true,
    });
  }
  const answer = (await res.json().catch(() => ({}))) as A & { code?: string; message?: string; retryable?: boolean };
  if (!res.ok) {
    throw new SessileError(
      (answer.code ?? "PROTOCOL_ERROR") as "PROTOCOL_ERROR",
      answer.message ?? `${what} answered HTTP ${res.status}`,
      { retryable: answer.retryable ?? res.status >= 500 },
    );
  }
  return answer;
}

/**
 * Creates a server session holding `state`, following `flow` (a built-in
 * flow's name or a declared table, which the server validates and stores
 * with the session). Network failures reject with a retryable
 * `SERVER_UNREACHABLE`; the server's refusals keep its code.
 */
export async function createServerSession(
  http: string,
  body: { state: unknown; flow?: string | FlowDeclaration; ttlSeconds?: number },
): Promise<ServerSession & { status: string; expiresAt: number }> {
  const init = { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
  const created = await requestJson<Partial<ServerSession & { status: string; expiresAt: number }>>(http, "/v1/sessions", init, "creating a session");
  if (!created.id || !created.token) throw new SessileError("PROTOCOL_ERROR", "the server created a session without an id or token");
  return created as ServerSession & { status: string; expiresAt: number };
}

/**
 * One call of the session's HTTP API (`extend`, `validate`, `DELETE`) with
 * its token; resolves with the JSON answer. Errors as {@link createServerSession}.
 */
export function callSession<A>(
  http: string,
  session: ServerSession,
  method: "POST" | "DELETE",
  path: string,
  body?: unknown,
): Promise<A> {
  const init = {
    method,
    headers: { "content-type": "application/json", authorization: `Bearer ${session.token}` },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  };
  return requestJson<A>(http, `/v1/sessions/${session.id}${path}`, init, `${method} ${path || "/"}`);
}
