//! Which client id a tab's store goes by when the page gives none: the one
//! this tab had before a reload (kept in sessionStorage as a JSON string)
//! unless a live store holds its Web Lock (a duplicated tab, or a second
//! store of the namespace in this page), else a new one from 128 random
//! bits the driver draws. The driver reads, locks and draws; this decides.

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
pub fn parse_client(text: Option<&str>) -> Option<ClientId> {
    let id: String = serde_json::from_str(text?).ok()?;
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
}
