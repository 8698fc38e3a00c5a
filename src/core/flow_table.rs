//! Flows a page declares: a table in the built-in flows' own shape (statuses
//! with kinds, rows of allowed transitions, the expired and ended statuses),
//! read from JSON and validated ([`DeclaredFlow`]), and [`SessionFlow`], the
//! flow one session follows, built-in or declared.
//!
//! A declared table, as JSON:
//!
//! ```json
//! { "initial": "cart",
//!   "statuses": { "cart": "active", "paying": "waiting", "paid": "closed",
//!                 "expired": "expired", "terminated": "closed" },
//!   "transitions": { "cart": ["paying", "expired", "terminated"],
//!                    "paying": ["paid", "terminated"] },
//!   "expired": "expired", "ended": "terminated", "name": "shop" }
//! ```
//!
//! `expired` and `ended` default to `expired` and `terminated`, `name` to
//! `custom`. Checks run in a fixed order (fields, name, statuses in sorted
//! order, initial, expired, ended, rows in sorted order, then that every
//! non-terminal status can be ended) and the first failure is reported, so
//! the page (which runs these checks in the wasm module) and the server name
//! the same problem in the same words.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::core::error::{Result, SessileError};
use crate::core::lifecycle::{self, Flow, FlowRules, StatusKind, FLOWS};
use crate::core::vec_map::VecMap;

/// Most statuses a declared flow may have.
pub const MAX_FLOW_STATUSES: usize = 64;
/// Longest status (or flow) name, in characters.
pub const MAX_STATUS_NAME_CHARS: usize = 64;
/// Name of a declared flow that gives none.
pub const DEFAULT_DECLARED_NAME: &str = "custom";
/// Status `expired` names when the table leaves it out.
pub const DEFAULT_EXPIRED: &str = "expired";
/// Status `ended` names when the table leaves it out.
pub const DEFAULT_ENDED: &str = "terminated";
/// The fields of a declared table, sorted.
pub const TABLE_FIELDS: [&str; 6] = [
    "ended",
    "expired",
    "initial",
    "name",
    "statuses",
    "transitions",
];

/// A flow a page declared, validated: every name known, terminal statuses
/// without rows, every other status able to end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredFlow {
    name: String,
    initial: String,
    expired: String,
    ended: String,
    statuses: VecMap<String, StatusKind>,
    transitions: VecMap<String, Vec<String>>,
}

fn invalid(reason: String) -> SessileError {
    SessileError::InvalidOptions {
        option: "flow",
        reason,
    }
}

/// `Ok` for 1 to 64 letters, digits, `_`, `.`, `:` or `-` (`what` says whose).
fn check_name(what: &str, name: &str) -> Result<()> {
    let chars = name.chars().count();
    if chars > MAX_STATUS_NAME_CHARS {
        return Err(invalid(format!(
            "a {what} is {chars} characters long; at most {MAX_STATUS_NAME_CHARS} are allowed"
        )));
    }
    if name.is_empty() {
        return Err(invalid(format!("a {what} is empty")));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-');
    if !name.chars().all(allowed) {
        return Err(invalid(format!(
            "{what} `{name}` may hold only letters, digits, `_`, `.`, `:` and `-`"
        )));
    }
    Ok(())
}

/// A page-supplied name as an error message shows it: at most
/// [`MAX_STATUS_NAME_CHARS`] characters, then `…` (a 4 MB key does not come
/// back in the answer).
fn shown(name: &str) -> std::borrow::Cow<'_, str> {
    match name.char_indices().nth(MAX_STATUS_NAME_CHARS) {
        Some((at, _)) => format!("{}…", &name[..at]).into(),
        None => name.into(),
    }
}

/// The keys of `map`, sorted (whatever order the map keeps). By
/// insertion, one pass over keys already in order (serde_json's map
/// without `preserve_order`, as sessile builds it, keeps them sorted):
/// `sort` brings 2 to 3 KB of sorting code into the wasm module
/// (docs/PERFORMANCE.md).
fn sorted_keys(map: &Map<String, Value>) -> Vec<&String> {
    let mut keys: Vec<&String> = map.keys().collect();
    for i in 1..keys.len() {
        let mut j = i;
        while j > 0 && keys[j - 1] > keys[j] {
            keys.swap(j - 1, j);
            j -= 1;
        }
    }
    keys
}

impl DeclaredFlow {
    /// Reads and validates a declared table; `INVALID_OPTIONS` (option
    /// `flow`) saying what is wrong.
    pub fn from_json(table: &Value) -> Result<DeclaredFlow> {
        let Value::Object(map) = table else {
            return Err(invalid(
                "expected a flow name or a table `{ initial, statuses, transitions }`".into(),
            ));
        };
        if let Some(field) = sorted_keys(map)
            .into_iter()
            .find(|k| !TABLE_FIELDS.contains(&k.as_str()))
        {
            return Err(invalid(format!(
                "unknown field `{}`; a table has `initial`, `statuses`, `transitions`, \
                 `expired`, `ended` and `name`",
                shown(field)
            )));
        }
        let name = match map.get("name") {
            None => DEFAULT_DECLARED_NAME.to_string(),
            Some(Value::String(n)) => {
                check_name("flow name", n)?;
                if FLOWS.iter().any(|f| f.name == n) {
                    return Err(invalid(format!(
                        "flow name `{n}` is a built-in flow's; give the table another name"
                    )));
                }
                n.clone()
            }
            Some(_) => return Err(invalid("`name` must be a string".into())),
        };
        let Some(Value::Object(declared)) = map.get("statuses") else {
            return Err(invalid(
                "`statuses` must be an object giving each status its kind".into(),
            ));
        };
        if declared.len() > MAX_FLOW_STATUSES {
            return Err(invalid(format!(
                "{} statuses; at most {MAX_FLOW_STATUSES} are allowed",
                declared.len()
            )));
        }
        let mut statuses = VecMap::new();
        for status in sorted_keys(declared) {
            check_name("status name", status)?;
            let kind = declared[status.as_str()]
                .as_str()
                .and_then(StatusKind::from_name)
                .ok_or_else(|| {
                    invalid(format!(
                        "status `{status}`: the kind must be `active`, `waiting`, `closed` or `expired`"
                    ))
                })?;
            statuses.insert(status.clone(), kind);
        }
        let initial = match map.get("initial") {
            None => return Err(invalid("`initial` is missing".into())),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(invalid("`initial` must be a status name".into())),
        };
        match statuses.get(&initial) {
            None => {
                return Err(invalid(format!(
                    "`initial` is `{}`, which is not in `statuses`",
                    shown(&initial)
                )))
            }
            Some(k) if k.is_terminal() => {
                return Err(invalid(format!(
                    "`initial` is `{initial}`, a terminal status"
                )))
            }
            Some(_) => {}
        }
        let special = |field: &str, default: &str, want: StatusKind| -> Result<String> {
            let value = match map.get(field) {
                None => default.to_string(),
                Some(Value::String(s)) => s.clone(),
                Some(_) => return Err(invalid(format!("`{field}` must be a status name"))),
            };
            match statuses.get(&value) {
                None => Err(invalid(format!(
                    "`{field}` is `{}`, which is not in `statuses`",
                    shown(&value)
                ))),
                Some(k) if *k != want => Err(invalid(format!(
                    "`{field}` is `{value}`, which is not of kind `{}`",
                    want.as_str()
                ))),
                Some(_) => Ok(value),
            }
        };
        let expired = special("expired", DEFAULT_EXPIRED, StatusKind::Expired)?;
        let ended = special("ended", DEFAULT_ENDED, StatusKind::Closed)?;
        let Some(Value::Object(rows)) = map.get("transitions") else {
            return Err(invalid(
                "`transitions` must be an object giving each status the statuses it may go to"
                    .into(),
            ));
        };
        let mut transitions = VecMap::new();
        for from in sorted_keys(rows) {
            match statuses.get(from) {
                None => {
                    return Err(invalid(format!(
                        "row `{}` is not in `statuses`",
                        shown(from)
                    )))
                }
                Some(k) if k.is_terminal() => {
                    return Err(invalid(format!(
                        "terminal status `{from}` has a row; a terminal status goes nowhere"
                    )))
                }
                Some(_) => {}
            }
            let list = || invalid(format!("row `{from}` must be a list of status names"));
            let Value::Array(targets) = &rows[from.as_str()] else {
                return Err(list());
            };
            let mut row: Vec<String> = Vec::with_capacity(targets.len().min(MAX_FLOW_STATUSES));
            for to in targets {
                let to = to.as_str().ok_or_else(list)?;
                if statuses.get(to).is_none() {
                    return Err(invalid(format!(
                        "row `{from}` goes to `{}`, which is not in `statuses`",
                        shown(to)
                    )));
                }
                if row.iter().any(|t| t == to) {
                    return Err(invalid(format!("row `{from}` lists `{to}` twice")));
                }
                row.push(to.to_string());
            }
            transitions.insert(from.clone(), row);
        }
        let flow = DeclaredFlow {
            name,
            initial,
            expired,
            ended,
            statuses,
            transitions,
        };
        if let Some((status, _)) = flow
            .statuses
            .iter()
            .find(|(s, k)| !k.is_terminal() && !flow.allows(s, &flow.ended))
        {
            return Err(invalid(format!(
                "status `{status}` cannot be ended: its row does not go to `{}`",
                flow.ended
            )));
        }
        Ok(flow)
    }

    /// The table as JSON, every field given, keys sorted: what the server
    /// stores and what [`DeclaredFlow::from_json`] reads back unchanged.
    pub fn to_json(&self) -> Value {
        let statuses: Map<String, Value> = self
            .statuses
            .iter()
            .map(|(s, k)| (s.clone(), Value::from(k.as_str())))
            .collect();
        let transitions: Map<String, Value> = self
            .transitions
            .iter()
            .map(|(s, tos)| (s.clone(), Value::from(tos.clone())))
            .collect();
        serde_json::json!({
            "name": self.name, "initial": self.initial, "expired": self.expired,
            "ended": self.ended, "statuses": statuses, "transitions": transitions,
        })
    }

    /// Every status with its kind, sorted by name.
    pub fn statuses(&self) -> impl Iterator<Item = (&str, StatusKind)> {
        self.statuses.iter().map(|(s, k)| (s.as_str(), *k))
    }

    /// Every row: a status and the statuses it may go to, sorted by status.
    pub fn transitions(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.transitions
            .iter()
            .map(|(s, tos)| (s.as_str(), tos.as_slice()))
    }
}

impl FlowRules for DeclaredFlow {
    fn name(&self) -> &str {
        &self.name
    }
    fn initial(&self) -> &str {
        &self.initial
    }
    fn expired(&self) -> &str {
        &self.expired
    }
    fn ended(&self) -> &str {
        &self.ended
    }
    fn kind(&self, status: &str) -> Option<StatusKind> {
        self.statuses.get(status).copied()
    }
    fn allows(&self, from: &str, to: &str) -> bool {
        self.transitions
            .get(from)
            .is_some_and(|tos| tos.iter().any(|t| t == to))
    }
}

/// The flow one session follows: a built-in one, or a table its page declared.
#[derive(Debug, Clone)]
pub enum SessionFlow {
    /// `checkout` or `table`.
    Builtin(&'static Flow),
    /// A validated table.
    Declared(Arc<DeclaredFlow>),
}

impl SessionFlow {
    /// The flow a create request asks for: a built-in flow's name
    /// (`UNKNOWN_FLOW` when there is none of that name) or a table
    /// (`INVALID_OPTIONS` when it does not validate).
    pub fn from_json(flow: &Value) -> Result<SessionFlow> {
        match flow {
            Value::String(name) => lifecycle::flow(name).map(SessionFlow::Builtin),
            table => DeclaredFlow::from_json(table).map(|f| SessionFlow::Declared(Arc::new(f))),
        }
    }

    /// The declared table as JSON ([`DeclaredFlow::to_json`]); `None` for a built-in flow.
    pub fn table(&self) -> Option<Value> {
        match self {
            SessionFlow::Builtin(_) => None,
            SessionFlow::Declared(f) => Some(f.to_json()),
        }
    }
}

impl FlowRules for SessionFlow {
    fn name(&self) -> &str {
        match self {
            SessionFlow::Builtin(f) => f.name,
            SessionFlow::Declared(f) => f.name(),
        }
    }
    fn initial(&self) -> &str {
        match self {
            SessionFlow::Builtin(f) => f.initial,
            SessionFlow::Declared(f) => f.initial(),
        }
    }
    fn expired(&self) -> &str {
        match self {
            SessionFlow::Builtin(f) => f.expired,
            SessionFlow::Declared(f) => f.expired(),
        }
    }
    fn ended(&self) -> &str {
        match self {
            SessionFlow::Builtin(f) => f.ended,
            SessionFlow::Declared(f) => f.ended(),
        }
    }
    fn kind(&self, status: &str) -> Option<StatusKind> {
        match self {
            SessionFlow::Builtin(f) => f.kind(status),
            SessionFlow::Declared(f) => FlowRules::kind(&**f, status),
        }
    }
    fn allows(&self, from: &str, to: &str) -> bool {
        match self {
            SessionFlow::Builtin(f) => f.allows(from, to),
            SessionFlow::Declared(f) => FlowRules::allows(&**f, from, to),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shop() -> Value {
        json!({
            "initial": "cart",
            "statuses": { "cart": "active", "paying": "waiting", "paid": "closed",
                          "expired": "expired", "terminated": "closed" },
            "transitions": { "cart": ["paying", "expired", "terminated"],
                             "paying": ["paid", "terminated"] },
        })
    }

    /// The reason of an `INVALID_OPTIONS` for `table`, or a panic.
    fn refused(table: Value) -> String {
        let e = DeclaredFlow::from_json(&table).unwrap_err();
        assert_eq!(e.code(), "INVALID_OPTIONS", "{e}");
        let text = e.to_string();
        text.strip_prefix("invalid option `flow`: ")
            .unwrap_or_else(|| panic!("{text}"))
            .to_string()
    }

    fn with(mut table: Value, key: &str, value: Value) -> Value {
        table[key] = value;
        table
    }

    #[test]
    fn a_declared_flow_follows_the_same_rules_as_the_built_ins() {
        let f = DeclaredFlow::from_json(&shop()).unwrap();
        assert_eq!(
            (f.name(), f.initial(), f.expired(), f.ended()),
            ("custom", "cart", "expired", "terminated")
        );
        assert!(f.check("cart", "paying").is_ok());
        let e = f.check("cart", "paid").unwrap_err();
        assert_eq!(e.code(), "INVALID_TRANSITION");
        assert!(e.to_string().contains("`cart`") && e.to_string().contains("`paid`"));
        assert!(
            f.check("paid", "cart").is_err(),
            "a terminal status goes nowhere"
        );
        assert!(f.check("nope", "cart").is_err());
        assert_eq!(f.kind("paying"), Some(StatusKind::Waiting));
        assert!(f.is_terminal("paid") && f.is_terminal("expired") && !f.is_terminal("cart"));
        // `paying` has no row to `expired`: past its TTL it stays usable.
        let exp = 1_000;
        assert_eq!(
            f.validity("cart", exp, exp).unwrap_err().code(),
            "SESSION_EXPIRED"
        );
        assert!(f.due_to_expire("cart", exp, exp) && !f.due_to_expire("paying", exp, exp));
        assert!(f.validity("paying", exp, exp + 1).is_ok());
        assert_eq!(
            f.validity("paid", exp, 0).unwrap_err().code(),
            "SESSION_CLOSED"
        );
        let m = 60_000;
        assert_eq!(
            f.staleness("paying", 0, 20 * m, 15 * 60, 20 * 60),
            lifecycle::Staleness::Stale
        );
        assert_eq!(
            f.staleness("cart", 0, 99 * m, 15 * 60, 20 * 60),
            lifecycle::Staleness::Fresh
        );
    }

    #[test]
    fn the_stored_form_reads_back_unchanged_and_names_every_field() {
        let f = DeclaredFlow::from_json(&with(shop(), "name", json!("shop"))).unwrap();
        let stored = f.to_json();
        assert_eq!(stored["name"], "shop");
        assert_eq!(stored["ended"], "terminated");
        assert_eq!(
            stored["transitions"]["cart"],
            json!(["paying", "expired", "terminated"])
        );
        assert_eq!(DeclaredFlow::from_json(&stored).unwrap(), f);
        let renamed = json!({
            "initial": "open", "expired": "timed-out", "ended": "closed",
            "statuses": { "open": "active", "timed-out": "expired", "closed": "closed" },
            "transitions": { "open": ["closed"] },
        });
        let g = DeclaredFlow::from_json(&renamed).unwrap();
        assert_eq!((g.expired(), g.ended()), ("timed-out", "closed"));
        assert!(!g.due_to_expire("open", 0, 1), "no row goes to `timed-out`");
    }

    #[test]
    fn session_flow_takes_a_name_or_a_table() {
        let b = SessionFlow::from_json(&json!("table")).unwrap();
        assert_eq!((b.name(), b.initial()), ("table", "PENDING"));
        assert!(b.table().is_none());
        assert!(b.check("CART_ACTIVE", "BROWSING").is_ok());
        assert_eq!(
            SessionFlow::from_json(&json!("nope")).unwrap_err().code(),
            "UNKNOWN_FLOW"
        );
        let d = SessionFlow::from_json(&shop()).unwrap();
        assert_eq!(d.table().unwrap()["initial"], "cart");
        assert!(d.check("cart", "paying").is_ok() && d.check("cart", "checkout").is_err());
        for bad in [json!(5), json!(["cart"]), json!(true)] {
            assert_eq!(
                SessionFlow::from_json(&bad).unwrap_err().code(),
                "INVALID_OPTIONS"
            );
        }
    }

    #[test]
    fn every_kind_of_bad_table_is_refused_with_what_is_wrong() {
        let mut t = shop();
        t["transitions"]["cart"] = json!(["paying", "checkout", "terminated"]);
        assert_eq!(
            refused(t),
            "row `cart` goes to `checkout`, which is not in `statuses`"
        );
        let mut t = shop();
        t.as_object_mut().unwrap().remove("initial");
        assert_eq!(refused(t), "`initial` is missing");
        assert_eq!(
            refused(with(shop(), "initial", json!("paid"))),
            "`initial` is `paid`, a terminal status"
        );
        assert_eq!(
            refused(with(shop(), "initial", json!("start"))),
            "`initial` is `start`, which is not in `statuses`"
        );
        let mut t = shop();
        t["transitions"]["paid"] = json!(["cart"]);
        assert_eq!(
            refused(t),
            "terminal status `paid` has a row; a terminal status goes nowhere"
        );
        let mut t = shop();
        t["transitions"]["paying"] = json!(["paid"]);
        assert_eq!(
            refused(t),
            "status `paying` cannot be ended: its row does not go to `terminated`"
        );
        let mut t = shop();
        t["transitions"].as_object_mut().unwrap().remove("paying");
        assert_eq!(
            refused(t),
            "status `paying` cannot be ended: its row does not go to `terminated`"
        );
        let mut t = shop();
        for i in 0..61 {
            t["statuses"][format!("s{i}")] = json!("closed");
        }
        assert_eq!(refused(t.clone()), "66 statuses; at most 64 are allowed");
        t["statuses"].as_object_mut().unwrap().remove("s0");
        t["statuses"].as_object_mut().unwrap().remove("s1");
        assert!(
            DeclaredFlow::from_json(&t).is_ok(),
            "64 statuses are allowed"
        );
        let long = "x".repeat(65);
        let mut t = shop();
        t["statuses"][long.as_str()] = json!("closed");
        assert_eq!(
            refused(t),
            "a status name is 65 characters long; at most 64 are allowed"
        );
        let mut t = shop();
        t["statuses"]["x".repeat(64)] = json!("closed");
        assert!(
            DeclaredFlow::from_json(&t).is_ok(),
            "64 characters are allowed"
        );
        let mut t = shop();
        t["statuses"]["with space"] = json!("closed");
        assert_eq!(
            refused(t),
            "status name `with space` may hold only letters, digits, `_`, `.`, `:` and `-`"
        );
        let mut t = shop();
        t["statuses"]["paid"] = json!("done");
        assert_eq!(
            refused(t),
            "status `paid`: the kind must be `active`, `waiting`, `closed` or `expired`"
        );
        assert!(refused(with(shop(), "steps", json!([]))).starts_with("unknown field `steps`"));
        assert_eq!(
            refused(with(shop(), "ended", json!("expired"))),
            "`ended` is `expired`, which is not of kind `closed`"
        );
        assert_eq!(
            refused(with(shop(), "expired", json!("gone"))),
            "`expired` is `gone`, which is not in `statuses`"
        );
        assert_eq!(
            refused(with(shop(), "name", json!("checkout"))),
            "flow name `checkout` is a built-in flow's; give the table another name"
        );
        let mut t = shop();
        t["transitions"]["cart"] = json!(["paying", "paying", "terminated"]);
        assert_eq!(refused(t), "row `cart` lists `paying` twice");
        let mut t = shop();
        t["transitions"]["cart"] = json!("paying");
        assert_eq!(refused(t), "row `cart` must be a list of status names");
        let mut t = shop();
        t["transitions"]["nope"] = json!([]);
        assert_eq!(refused(t), "row `nope` is not in `statuses`");
        assert!(refused(with(shop(), "statuses", json!([]))).starts_with("`statuses` must be"));
        assert!(
            refused(with(shop(), "transitions", json!(null))).starts_with("`transitions` must be")
        );
    }
}
