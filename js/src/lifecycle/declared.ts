/**
 * Flows a page declares: the page's copy of the core's checks
 * (`src/core/flow_table.rs`), in the same order and with the same messages,
 * so that a table the page accepts is one the server accepts, and a refused
 * one is refused for the same reason on both sides.
 * `tests/fixtures/lifecycle_cases.json` holds the core's verdict on valid
 * and invalid tables, which `js/test/lifecycle.test.mjs` replays here.
 *
 * @module
 */
import { SessileError } from "../errors.js";
import {
  DECLARED_DEFAULTS,
  FLOWS,
  MAX_FLOW_STATUSES,
  MAX_STATUS_NAME_CHARS,
  TABLE_FIELDS,
  type StatusKind,
} from "./flows.js";

/**
 * A lifecycle flow a page declares instead of a built-in one: every status
 * with its kind, the statuses each may go to, and which status a session
 * starts in, expires to and ends in. The server validates it with the same
 * rules, stores it with the session and enforces it.
 *
 * - Kinds: `active` (the shopper moves on), `waiting` (on a payment, a
 *   kitchen: reported as stale after 20 min), `closed` and `expired`
 *   (terminal: a terminal status has no row).
 * - Every non-terminal status needs a row that goes to `ended`. A status
 *   whose row goes to `expired` expires when the TTL has passed; one whose
 *   row does not never expires silently.
 * - At most 64 statuses; names are 1 to 64 letters, digits, `_`, `.`, `:` or `-`.
 *
 * ```ts
 * const session = await openSession<Cart>({
 *   name: "checkout",
 *   initial: { items: [] },
 *   server: { http: "https://shop.example/sessile" },
 *   flow: {
 *     name: "pay-desk",                     // optional, default "custom"
 *     initial: "cart",
 *     statuses: { cart: "active", paying: "waiting", paid: "closed",
 *                 expired: "expired", terminated: "closed" },
 *     transitions: { cart: ["paying", "expired", "terminated"],
 *                    paying: ["paid", "terminated"] },   // paying never expires
 *     // expired: "expired", ended: "terminated"          (the defaults)
 *   },
 * });
 * session.step("paying");
 * session.step("cart");                     // throws INVALID_TRANSITION
 * ```
 */
export interface FlowDeclaration {
  /** Name the server reports and groups the health report by (default `custom`; not `checkout` or `table`). */
  name?: string;
  /** Status of a new session (active or waiting). */
  initial: string;
  /** Every status of the flow with its kind. */
  statuses: Readonly<Record<string, StatusKind>>;
  /** For each non-terminal status, the statuses it may go to. */
  transitions: Readonly<Record<string, readonly string[]>>;
  /** Status an expired session moves to (kind `expired`; default `expired`). */
  expired?: string;
  /** Status `end()` moves a session to (kind `closed`; default `terminated`). */
  ended?: string;
}

/** A flow as the core holds it, every field given: a built-in one or a validated declaration. */
export interface FlowTable {
  readonly name: string;
  readonly initial: string;
  readonly expired: string;
  readonly ended: string;
  readonly statuses: Readonly<Record<string, StatusKind>>;
  readonly transitions: Readonly<Record<string, readonly string[]>>;
}

const KINDS: readonly string[] = ["active", "waiting", "closed", "expired"];

const invalid = (reason: string) => new SessileError("INVALID_OPTIONS", `invalid option \`flow\`: ${reason}`);

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Orders strings by code point, as Rust orders its `String`s (not by UTF-16 unit). */
function byCodePoint(a: string, b: string): number {
  const x = Array.from(a, (c) => c.codePointAt(0) ?? 0);
  const y = Array.from(b, (c) => c.codePointAt(0) ?? 0);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

const sortedKeys = (o: Record<string, unknown>): string[] => Object.keys(o).sort(byCodePoint);

const has = (o: object, key: string): boolean => Object.hasOwn(o, key);

/**
 * A page-supplied name as an error message shows it: at most
 * MAX_STATUS_NAME_CHARS characters (code points, as Rust counts them), then
 * `…` (a 4 MB key does not come back in the message).
 */
function shown(name: string): string {
  let n = 0;
  for (let i = 0; i < name.length; n++) {
    if (n === MAX_STATUS_NAME_CHARS) return `${name.slice(0, i)}…`;
    i += (name.codePointAt(i) ?? 0) > 0xffff ? 2 : 1;
  }
  return name;
}

function checkName(what: string, name: string): void {
  const chars = Array.from(name).length;
  if (chars > MAX_STATUS_NAME_CHARS) {
    throw invalid(`a ${what} is ${chars} characters long; at most ${MAX_STATUS_NAME_CHARS} are allowed`);
  }
  if (name === "") throw invalid(`a ${what} is empty`);
  if (!/^[A-Za-z0-9_.:-]+$/.test(name)) {
    throw invalid(`${what} \`${name}\` may hold only letters, digits, \`_\`, \`.\`, \`:\` and \`-\``);
  }
}

const isTerminal = (kind: StatusKind | undefined): boolean => kind === "closed" || kind === "expired";

/**
 * Validates a declared table (as the server will receive it: its JSON) and
 * returns it with every field given; `INVALID_OPTIONS` saying what is wrong.
 */
export function declareFlow(declaration: unknown): FlowTable {
  let table: unknown;
  try {
    // What the server gets: undefined fields dropped, the rest as JSON.
    table = JSON.parse(JSON.stringify(declaration) ?? "null");
  } catch {
    table = undefined;
  }
  if (!isObject(table)) throw invalid("expected a flow name or a table `{ initial, statuses, transitions }`");
  const field = sortedKeys(table).find((k) => !(TABLE_FIELDS as readonly string[]).includes(k));
  if (field !== undefined) {
    throw invalid(
      `unknown field \`${shown(field)}\`; a table has \`initial\`, \`statuses\`, \`transitions\`, \`expired\`, \`ended\` and \`name\``,
    );
  }
  let name: string = DECLARED_DEFAULTS.name;
  if (has(table, "name")) {
    if (typeof table.name !== "string") throw invalid("`name` must be a string");
    checkName("flow name", table.name);
    if (has(FLOWS, table.name)) {
      throw invalid(`flow name \`${table.name}\` is a built-in flow's; give the table another name`);
    }
    name = table.name;
  }
  const declared = table.statuses;
  if (!isObject(declared)) throw invalid("`statuses` must be an object giving each status its kind");
  const names = sortedKeys(declared);
  if (names.length > MAX_FLOW_STATUSES) {
    throw invalid(`${names.length} statuses; at most ${MAX_FLOW_STATUSES} are allowed`);
  }
  const kinds = new Map<string, StatusKind>();
  for (const status of names) {
    checkName("status name", status);
    const kind = declared[status];
    if (typeof kind !== "string" || !KINDS.includes(kind)) {
      throw invalid(`status \`${status}\`: the kind must be \`active\`, \`waiting\`, \`closed\` or \`expired\``);
    }
    kinds.set(status, kind as StatusKind);
  }
  if (!has(table, "initial")) throw invalid("`initial` is missing");
  const initial = table.initial;
  if (typeof initial !== "string") throw invalid("`initial` must be a status name");
  if (!kinds.has(initial)) throw invalid(`\`initial\` is \`${shown(initial)}\`, which is not in \`statuses\``);
  if (isTerminal(kinds.get(initial))) throw invalid(`\`initial\` is \`${initial}\`, a terminal status`);
  const special = (key: "expired" | "ended", want: StatusKind): string => {
    const value = has(table, key) ? table[key] : DECLARED_DEFAULTS[key];
    if (typeof value !== "string") throw invalid(`\`${key}\` must be a status name`);
    if (!kinds.has(value)) throw invalid(`\`${key}\` is \`${shown(value)}\`, which is not in \`statuses\``);
    if (kinds.get(value) !== want) throw invalid(`\`${key}\` is \`${value}\`, which is not of kind \`${want}\``);
    return value;
  };
  const expired = special("expired", "expired");
  const ended = special("ended", "closed");
  const rows = table.transitions;
  if (!isObject(rows)) {
    throw invalid("`transitions` must be an object giving each status the statuses it may go to");
  }
  const transitions = new Map<string, string[]>();
  for (const from of sortedKeys(rows)) {
    if (!kinds.has(from)) throw invalid(`row \`${shown(from)}\` is not in \`statuses\``);
    if (isTerminal(kinds.get(from))) {
      throw invalid(`terminal status \`${from}\` has a row; a terminal status goes nowhere`);
    }
    const targets = rows[from];
    const list = () => invalid(`row \`${from}\` must be a list of status names`);
    if (!Array.isArray(targets)) throw list();
    const row: string[] = [];
    for (const to of targets as unknown[]) {
      if (typeof to !== "string") throw list();
      if (!kinds.has(to)) throw invalid(`row \`${from}\` goes to \`${shown(to)}\`, which is not in \`statuses\``);
      if (row.includes(to)) throw invalid(`row \`${from}\` lists \`${to}\` twice`);
      row.push(to);
    }
    transitions.set(from, row);
  }
  for (const status of names) {
    if (!isTerminal(kinds.get(status)) && !(transitions.get(status) ?? []).includes(ended)) {
      throw invalid(`status \`${status}\` cannot be ended: its row does not go to \`${ended}\``);
    }
  }
  // Object.fromEntries makes own properties even of names like `__proto__`.
  return {
    name,
    initial,
    expired,
    ended,
    statuses: Object.fromEntries(names.map((s) => [s, kinds.get(s) as StatusKind])),
    transitions: Object.fromEntries(transitions),
  };
}

/** The built-in flow called `name`, or `UNKNOWN_FLOW`. */
export function flowTable(name: string): FlowTable {
  const flow = has(FLOWS, name) ? (FLOWS as Record<string, FlowTable>)[name] : undefined;
  if (flow === undefined) throw new SessileError("UNKNOWN_FLOW", `unknown flow \`${name}\``);
  return flow;
}

/** The flow `flow` names (a built-in one) or declares; `UNKNOWN_FLOW` / `INVALID_OPTIONS` otherwise. */
export function flowOf(flow: string | FlowDeclaration): FlowTable {
  return typeof flow === "string" ? flowTable(flow) : declareFlow(flow);
}
