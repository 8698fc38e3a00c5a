//! Which client id a tab's store goes by when the page gives none: the one
//! this tab had before a reload (kept in sessionStorage as a JSON string)
//! unless a live store holds its Web Lock (a duplicated tab, or a second
//! store of the namespace in this page), else a new one from 128 random
//! bits the driver draws. A synced session's tab may also adopt the id of
//! a closed tab of the namespace whose lock nobody holds (its outbox is
//! then sent under its own id, so the server still dedupes): the ids this
//! browser knows are listed in localStorage, `sessile:<ns>:clients`. The
//! driver reads, locks and draws; this decides.

use super::types::ClientId;

/// What asking for the Web Lock of this tab's remembered id gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnLock {
    /// The lock was free and is now held by this store.
    Held,
    /// A live store (another tab with this sessionStorage, or another store
    /// in this page) holds it.
    Taken,
    /// No Web Locks here, or the request was refused: nothing tells a live
    /// holder apart.
    Unknown,
}

/// The client id in sessionStorage's text (a JSON string of 32 lowercase
/// hex digits), if that is what it holds.
/// (Read as a `Value`: serde's derive for a `String` would bring its
/// "invalid type" messages, and with them float printing, into the wasm
/// module.)
pub fn parse_client(text: Option<&str>) -> Option<ClientId> {
    let serde_json::Value::String(id) = serde_json::from_slice(text?.as_bytes()).ok()? else {
        return None;
    };
    is_client_id(&id).then_some(ClientId(id))
}

/// The client id as sessionStorage holds it: a JSON string.
pub fn client_text(client: &ClientId) -> String {
    ["\"", &client.0, "\""].concat()
}

/// Whether `id` is 32 lowercase hex digits.
pub fn is_client_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A client id from 16 random bytes.
pub fn client_from_bytes(bytes: [u8; 16]) -> ClientId {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let id = bytes
        .iter()
        .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]])
        .map(char::from)
        .collect();
    ClientId(id)
}

/// Whether to keep the remembered id `own`: yes unless there is none or a
/// live store holds it (without Web Locks this tab's own id is kept, as
/// after a reload; a duplicated tab then shares it, which the
/// compare-and-set on the stored head still keeps safe).
pub fn keep_own(own: Option<&ClientId>, lock: OwnLock) -> bool {
    own.is_some() && lock != OwnLock::Taken
}

/// Most ids the namespace's list of clients keeps (the newest).
pub const MAX_KNOWN_CLIENTS: usize = 32;

/// The ids in the list of clients' text (a JSON array of strings); the
/// entries that are not client ids, and a text that does not read, are
/// left out.
pub fn parse_known(text: Option<&str>) -> Vec<ClientId> {
    let Some(Ok(serde_json::Value::Array(ids))) =
        text.map(|t| serde_json::from_slice(t.as_bytes()))
    else {
        return Vec::new();
    };
    ids.iter()
        .filter_map(serde_json::Value::as_str)
        .filter(|id| is_client_id(id))
        .map(|id| ClientId(id.into()))
        .collect()
}

/// The list's text with `id` added at the end when missing (the newest
/// [`MAX_KNOWN_CLIENTS`] kept); `None` when it is there already.
pub fn known_with(known: &[ClientId], id: &ClientId) -> Option<String> {
    if known.contains(id) {
        return None;
    }
    let all: Vec<&ClientId> = known.iter().chain([id]).collect();
    let kept = &all[all.len().saturating_sub(MAX_KNOWN_CLIENTS)..];
    Some(known_text(kept.iter().copied()))
}

/// The list's text without `id`.
pub fn known_without(known: &[ClientId], id: &ClientId) -> String {
    known_text(known.iter().filter(|c| *c != id))
}

fn known_text<'a>(ids: impl Iterator<Item = &'a ClientId>) -> String {
    let parts: Vec<String> = ids.map(client_text).collect();
    ["[", &parts.join(","), "]"].concat()
}

/// The ids a synced tab tries, in order: its own (kept over a reload),
/// then the others this browser knows, oldest first.
pub fn candidates(own: Option<&ClientId>, known: &[ClientId]) -> Vec<ClientId> {
    own.into_iter()
        .chain(known.iter().filter(|c| Some(*c) != own))
        .cloned()
        .collect()
}

/// What a synced tab does with a candidate id once it asked for its lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// Go by this id (its lock is held now, or it is this tab's own id and
    /// nothing can tell whether another holds it).
    Take,
    /// A live tab holds it: try the next one.
    Next,
    /// No working Web Locks: another tab's id may be live (two tabs
    /// sending one id's sequence numbers would lose changes), so take a new
    /// id instead.
    New,
}

/// The rule for candidate `id` (`own`: it is this tab's own) after its
/// lock request gave `lock`.
pub fn pick(own: bool, lock: OwnLock) -> Pick {
    match lock {
        OwnLock::Held => Pick::Take,
        OwnLock::Taken => Pick::Next,
        OwnLock::Unknown if own => Pick::Take,
        OwnLock::Unknown => Pick::New,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_id_is_a_json_string_of_hex() {
        let id = "0123456789abcdef".repeat(2);
        let text = client_text(&ClientId(id.clone()));
        assert_eq!(text, ["\"", &id, "\""].concat());
        assert_eq!(parse_client(Some(&text)), Some(ClientId(id.clone())));
        assert_eq!(parse_client(Some(&id)), None, "not JSON");
        assert_eq!(parse_client(Some("\"ABCDEF\"")), None);
        assert_eq!(
            parse_client(Some(&client_text(&ClientId(id.to_uppercase())))),
            None
        );
        assert_eq!(parse_client(None), None);
    }

    #[test]
    fn random_bytes_make_an_id() {
        let id = client_from_bytes([0xab; 16]);
        assert_eq!(id.0, "ab".repeat(16));
        assert!(is_client_id(
            &client_from_bytes([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 255]).0
        ));
    }

    #[test]
    fn the_own_id_is_kept_unless_a_live_store_holds_it() {
        let own = ClientId("1".repeat(32));
        assert!(keep_own(Some(&own), OwnLock::Held));
        assert!(keep_own(Some(&own), OwnLock::Unknown));
        assert!(!keep_own(Some(&own), OwnLock::Taken));
        assert!(!keep_own(None, OwnLock::Held));
        assert!(!keep_own(None, OwnLock::Unknown));
    }

    #[test]
    fn the_list_of_clients_reads_keeps_the_newest_and_forgets() {
        let id = |c: char| ClientId(c.to_string().repeat(32));
        let text = [
            "[",
            &client_text(&id('a')),
            ",\"junk\",7,",
            &client_text(&id('b')),
            "]",
        ]
        .concat();
        let known = parse_known(Some(&text));
        assert_eq!(known, vec![id('a'), id('b')]);
        assert_eq!(parse_known(Some("{")), Vec::<ClientId>::new());
        assert_eq!(parse_known(None), Vec::<ClientId>::new());
        assert_eq!(known_with(&known, &id('a')), None, "listed already");
        let added = known_with(&known, &id('c')).unwrap();
        assert_eq!(parse_known(Some(&added)), vec![id('a'), id('b'), id('c')]);
        let many: Vec<ClientId> = (0..MAX_KNOWN_CLIENTS)
            .map(|n| client_from_bytes([n as u8; 16]))
            .collect();
        let full = parse_known(known_with(&many, &id('c')).as_deref());
        assert_eq!(full.len(), MAX_KNOWN_CLIENTS);
        assert_eq!(
            (full.first(), full.last()),
            (Some(&many[1]), Some(&id('c')))
        );
        let without = known_without(&known, &id('a'));
        assert_eq!(parse_known(Some(&without)), vec![id('b')]);
        assert_eq!(known_without(&[], &id('a')), "[]");
    }

    #[test]
    fn a_synced_tab_tries_its_own_id_first_and_adopts_only_under_a_lock() {
        let own = ClientId("1".repeat(32));
        let other = ClientId("2".repeat(32));
        let known = [other.clone(), own.clone()];
        assert_eq!(
            candidates(Some(&own), &known),
            vec![own.clone(), other.clone()]
        );
        assert_eq!(candidates(None, &known), known.to_vec());
        assert_eq!(pick(true, OwnLock::Held), Pick::Take);
        assert_eq!(pick(false, OwnLock::Held), Pick::Take);
        assert_eq!(pick(true, OwnLock::Taken), Pick::Next);
        assert_eq!(pick(false, OwnLock::Taken), Pick::Next);
        assert_eq!(pick(true, OwnLock::Unknown), Pick::Take);
        assert_eq!(pick(false, OwnLock::Unknown), Pick::New);
    }
}
