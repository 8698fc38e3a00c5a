//! This tab's client id when the page gives none, through sessionStorage
//! (web-sys) and Web Locks: the id kept under `sessile:<ns>:client` (a
//! reload keeps it) if no live store holds its lock, else a new random one;
//! its lock is held while the store lives. The choice is
//! `core::session::store::identity`'s.

use super::locks::{try_hold, HeldLock};
use super::page::random_bytes;
use crate::core::session::store::identity::{
    client_from_bytes, client_text, keep_own, parse_client, OwnLock,
};
use crate::core::session::store::layout::Layout;
use crate::core::session::store::ClientId;

pub(crate) fn session_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.session_storage().ok().flatten()
}

/// The client id for namespace `layout` and the lock that guards it (none
/// without Web Locks).
pub(crate) async fn client_for(layout: &Layout) -> (ClientId, Option<HeldLock>) {
    let storage = session_storage();
    let key = layout.client_key();
    let text = storage
        .as_ref()
        .and_then(|s| s.get_item(&key).ok().flatten());
    let own = parse_client(text.as_deref());
    let (lock, held) = match &own {
        Some(id) => try_hold(&layout.client_lock(id)).await,
        None => (OwnLock::Unknown, None),
    };
    let chosen = match own {
        Some(id) if keep_own(Some(&id), lock) => (id, held),
        _ => fresh(layout).await,
    };
    if let Some(s) = &storage {
        // Storage disabled: the id lasts as long as the page.
        let _ = s.set_item(&key, &client_text(&chosen.0));
    }
    chosen
}

/// A new random id, with its lock (a taken one, however unlikely, is
/// passed over).
pub(crate) async fn fresh(layout: &Layout) -> (ClientId, Option<HeldLock>) {
    let mut id = client_from_bytes(random_bytes());
    for _ in 0..8 {
        let (lock, held) = try_hold(&layout.client_lock(&id)).await;
        if lock != OwnLock::Taken {
            return (id, held);
        }
        id = client_from_bytes(random_bytes());
    }
    (id, None)
}
