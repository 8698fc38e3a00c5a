//! This tab's client id for a synced session: its own (sessionStorage
//! `sessile:<ns>:client`, kept over a reload), else the id of a closed tab
//! of the namespace whose Web Lock nobody holds (its outbox is then sent
//! under its own id), else a new one; the lock is held while the session
//! lives, and the id is listed in localStorage (`sessile:<ns>:clients`).
//! The rules are `core::session::store::identity`'s; this reads, locks and
//! writes.

use crate::core::error::SessileError;
use crate::core::session::store::identity::{
    candidates, client_text, known_with, known_without, parse_client, parse_known, pick, Pick,
};
use crate::core::session::store::layout::Layout;
use crate::core::session::store::ClientId;
use crate::web::store::identity::{fresh, session_storage};
use crate::web::store::local;
use crate::web::store::locks::{try_hold_reporting, HeldLock};

/// localStorage key (without `sessile:`) of the namespace's list of clients.
fn list_key(layout: &Layout) -> String {
    [layout.name(), ":clients"].concat()
}

fn known(layout: &Layout) -> Vec<ClientId> {
    parse_known(
        local::read_text(&list_key(layout))
            .ok()
            .flatten()
            .as_deref(),
    )
}

/// The client id a synced session of `layout` goes by, its lock (none
/// without Web Locks), and why it is not guarded when a lock request failed
/// unexpectedly (the page is told).
pub(crate) async fn session_client(
    layout: &Layout,
) -> (ClientId, Option<HeldLock>, Option<SessileError>) {
    let storage = session_storage();
    let key = layout.client_key();
    let own = parse_client(
        storage
            .as_ref()
            .and_then(|s| s.get_item(&key).ok().flatten())
            .as_deref(),
    );
    let listed = known(layout);
    let mut chosen = None;
    let mut problem = None;
    for id in candidates(own.as_ref(), &listed) {
        let (lock, held, why) = try_hold_reporting(&layout.client_lock(&id)).await;
        problem = problem.or(why);
        match pick(Some(&id) == own.as_ref(), lock) {
            Pick::Take => {
                chosen = Some((id, held));
                break;
            }
            Pick::Next => {}
            Pick::New => break,
        }
    }
    let (id, held) = match chosen {
        Some(c) => c,
        None => fresh(layout).await,
    };
    // A new id's lock is requested by `fresh`; without a candidate, ask once here.
    if problem.is_none() && held.is_none() {
        problem = try_hold_reporting(&layout.client_lock(&id)).await.2;
    }
    if let Some(s) = &storage {
        // Storage disabled: the id lasts as long as the page.
        let _ = s.set_item(&key, &client_text(&id));
    }
    if let Some(text) = known_with(&listed, &id) {
        let _ = local::write_text(&list_key(layout), &text);
    }
    (id, held, problem)
}

/// Takes `id` off the namespace's list (its session ended, its outbox is
/// cleared: nobody needs to adopt it).
pub(crate) fn forget_client(layout: &Layout, id: &ClientId) {
    let text = known_without(&known(layout), id);
    let _ = local::write_text(&list_key(layout), &text);
}
