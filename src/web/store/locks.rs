//! Web Locks (`navigator.locks`) for the store driver: a slot write or a
//! clear runs under the namespace's exclusive lock, so two tabs never write
//! at once (where the browser has no Web Locks, or refuses them with a
//! SecurityError, the work runs directly and its compare-and-set on the
//! stored head keeps a stale tab from overwriting); and a client id's lock
//! is held while its store lives. web-sys has `LockManager` only behind
//! `web_sys_unstable_apis`, so the one method used is declared here.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use js_sys::{Function, Object, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, spawn_local, JsFuture};

use super::page::{field, js_message, js_name};
use super::signal;
use crate::core::error::SessileError;
use crate::core::session::store::identity::OwnLock;

#[wasm_bindgen]
extern "C" {
    type LockManagerRef;
    #[wasm_bindgen(method, catch)]
    fn request(
        this: &LockManagerRef,
        name: &str,
        options: &JsValue,
        callback: &Function,
    ) -> Result<Promise, JsValue>;
}

fn lock_manager() -> Option<LockManagerRef> {
    let navigator = web_sys::window()?.navigator();
    let locks = field(&navigator.into(), "locks");
    locks.is_object().then(|| locks.unchecked_into())
}

/// Whether this browser has Web Locks.
pub(crate) fn available() -> bool {
    lock_manager().is_some()
}

fn options(entries: &[(&str, JsValue)]) -> JsValue {
    let obj = Object::new();
    for (key, value) in entries {
        let _ = js_sys::Reflect::set(&obj, &JsValue::from_str(key), value);
    }
    obj.into()
}

/// Runs `work` while holding the exclusive Web Lock `name` (directly where
/// there are no Web Locks, or the browser refuses them).
pub(crate) async fn exclusive<T, F, Fut>(name: &str, work: F) -> Result<T, SessileError>
where
    T: 'static,
    F: FnOnce() -> Fut + 'static,
    Fut: Future<Output = Result<T, SessileError>> + 'static,
{
    let outcome: Rc<RefCell<Option<Result<T, SessileError>>>> = Rc::new(RefCell::new(None));
    let sink = outcome.clone();
    let work: Work = Box::new(move || {
        Box::pin(async move {
            let result = work().await;
            *sink.borrow_mut() = Some(result);
        })
    });
    run_locked(name, work).await?;
    let result = outcome.borrow_mut().take();
    result.unwrap_or_else(|| Err(unavailable("the write lock ended before the write did")))
}

/// The work [`exclusive`] runs, its result kept by the work itself.
type Work = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()>>>>;

/// [`exclusive`]'s lock, once for every kind of work: a generic body would
/// be copied into the wasm module (with its closure's glue) for each.
/// `Ok` once the work ran.
async fn run_locked(name: &str, work: Work) -> Result<(), SessileError> {
    let Some(locks) = lock_manager() else {
        work().await;
        return Ok(());
    };
    let work = Rc::new(RefCell::new(Some(work)));
    let ran = Rc::new(Cell::new(false));
    let (taken, done) = (work.clone(), ran.clone());
    let callback = Closure::once(move |_lock: JsValue| -> Promise {
        let run = taken.borrow_mut().take();
        future_to_promise(async move {
            if let Some(run) = run {
                run().await;
                done.set(true);
            }
            Ok(JsValue::UNDEFINED)
        })
    });
    let mode = options(&[("mode", "exclusive".into())]);
    let locked = match locks.request(name, &mode, callback.as_ref().unchecked_ref()) {
        Ok(promise) => JsFuture::from(promise).await,
        Err(thrown) => Err(thrown),
    };
    if ran.get() {
        return Ok(());
    }
    match locked {
        // Site data blocked: as without Web Locks.
        Err(e) if js_name(&e) == "SecurityError" => {
            let run = work.borrow_mut().take();
            match run {
                Some(run) => {
                    run().await;
                    Ok(())
                }
                None => Err(unavailable("the write lock was refused after it ran")),
            }
        }
        Err(e) => Err(unavailable(
            &["the write lock failed: ", &js_message(&e)].concat(),
        )),
        Ok(_) => Err(unavailable(
            "the write lock was released without running the write",
        )),
    }
}

fn unavailable(reason: &str) -> SessileError {
    SessileError::StorageUnavailable {
        reason: reason.into(),
    }
}

/// A Web Lock held until this is dropped.
pub(crate) struct HeldLock {
    release: Function,
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        let _ = self.release.call0(&JsValue::UNDEFINED);
    }
}

/// Takes the Web Lock `name` if nobody holds it (`ifAvailable`): held (and
/// kept until the returned lock is dropped), taken by a live holder, or
/// unknown (no Web Locks, or the request failed).
pub(crate) async fn try_hold(name: &str) -> (OwnLock, Option<HeldLock>) {
    let (own, held, _) = try_hold_reporting(name).await;
    (own, held)
}

/// [`try_hold`], also saying why a lock request failed when the failure is
/// not a refusal (a `SecurityError`: site data blocked, as without Web
/// Locks): the page is told, since the id is then not guarded.
pub(crate) async fn try_hold_reporting(
    name: &str,
) -> (OwnLock, Option<HeldLock>, Option<SessileError>) {
    let Some(locks) = lock_manager() else {
        return (OwnLock::Unknown, None, None);
    };
    let (tx, rx) = signal::channel::<Result<Option<Function>, JsValue>>();
    let granted = tx.clone();
    let callback = Closure::once(move |lock: JsValue| -> Promise {
        if lock.is_null() || lock.is_undefined() {
            granted.send(Ok(None));
            return Promise::resolve(&JsValue::UNDEFINED);
        }
        Promise::new(&mut |resolve, _reject| granted.send(Ok(Some(resolve))))
    });
    let request = locks.request(
        name,
        &options(&[("ifAvailable", JsValue::TRUE)]),
        callback.as_ref().unchecked_ref(),
    );
    match request {
        Ok(promise) => spawn_local(async move {
            // Settles when the lock is released (or the request fails);
            // the callback must live until then.
            if let Err(e) = JsFuture::from(promise).await {
                tx.send(Err(e));
            }
            drop(callback);
        }),
        Err(e) => return (OwnLock::Unknown, None, unguarded(&e)),
    }
    match rx.await {
        Ok(Some(release)) => (OwnLock::Held, Some(HeldLock { release }), None),
        Ok(None) => (OwnLock::Taken, None, None),
        Err(e) => (OwnLock::Unknown, None, unguarded(&e)),
    }
}

/// Why a client id is not guarded: nothing for a refusal (`SecurityError`).
fn unguarded(thrown: &JsValue) -> Option<SessileError> {
    (js_name(thrown) != "SecurityError").then(|| {
        unavailable(
            &[
                "the client id's Web Lock could not be requested: ",
                &js_message(thrown),
            ]
            .concat(),
        )
    })
}
