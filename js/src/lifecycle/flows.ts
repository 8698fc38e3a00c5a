// Generated from src/core/lifecycle.rs by tests/lifecycle_tables.rs
// (UPDATE_LIFECYCLE_TABLES=1 cargo test --test lifecycle_tables). Do not edit.
/** What a status means for the session holding it. */
export type StatusKind = "active" | "waiting" | "closed" | "expired";
/** Default time to live of a session, seconds. */
export const DEFAULT_TTL_SECS = 1800;
/** Shortest TTL accepted, seconds. */
export const MIN_TTL_SECS = 60;
/** Longest TTL (and longest extension from now) accepted, seconds. */
export const MAX_TTL_SECS = 86400;
/** Most statuses a declared flow may have. */
export const MAX_FLOW_STATUSES = 64;
/** Longest status (or flow) name, in characters. */
export const MAX_STATUS_NAME_CHARS = 64;
/** What a declared table that leaves them out gets: its name, expired and ended statuses. */
export const DECLARED_DEFAULTS = {"ended":"terminated","expired":"expired","name":"custom"} as const;
/** The fields of a declared table, sorted. */
export const TABLE_FIELDS = ["ended","expired","initial","name","statuses","transitions"] as const;
/** The built-in flows: statuses with their kinds, allowed transitions. */
export const FLOWS = {
  "checkout": {
    "ended": "terminated",
    "expired": "expired",
    "initial": "cart",
    "name": "checkout",
    "statuses": {
      "cart": "active",
      "checkout": "active",
      "completed": "closed",
      "expired": "expired",
      "processing": "waiting",
      "success": "active",
      "terminated": "closed",
      "upsell-1": "active",
      "upsell-2": "active"
    },
    "transitions": {
      "cart": [
        "checkout",
        "expired",
        "terminated"
      ],
      "checkout": [
        "processing",
        "expired",
        "terminated"
      ],
      "processing": [
        "upsell-1",
        "expired",
        "terminated"
      ],
      "success": [
        "completed",
        "expired",
        "terminated"
      ],
      "upsell-1": [
        "upsell-2",
        "expired",
        "terminated"
      ],
      "upsell-2": [
        "success",
        "expired",
        "terminated"
      ]
    }
  },
  "table": {
    "ended": "CLOSED",
    "expired": "EXPIRED",
    "initial": "PENDING",
    "name": "table",
    "statuses": {
      "AWAITING_PAYMENT": "waiting",
      "BROWSING": "active",
      "CART_ACTIVE": "active",
      "CLOSED": "closed",
      "EXPIRED": "expired",
      "ORDER_PLACED": "waiting",
      "PAYMENT_COMPLETED": "active",
      "PENDING": "active"
    },
    "transitions": {
      "AWAITING_PAYMENT": [
        "PAYMENT_COMPLETED",
        "CLOSED"
      ],
      "BROWSING": [
        "CART_ACTIVE",
        "CLOSED",
        "EXPIRED"
      ],
      "CART_ACTIVE": [
        "ORDER_PLACED",
        "BROWSING",
        "CLOSED",
        "EXPIRED"
      ],
      "ORDER_PLACED": [
        "AWAITING_PAYMENT",
        "PAYMENT_COMPLETED",
        "CLOSED"
      ],
      "PAYMENT_COMPLETED": [
        "CLOSED"
      ],
      "PENDING": [
        "BROWSING",
        "CLOSED",
        "EXPIRED"
      ]
    }
  }
} as const;
