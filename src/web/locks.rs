//! Runs a store's write under the namespace's exclusive Web Lock
//! (`navigator.locks`), so two tabs never write at once; where the browser
//! has no Web Locks the write runs directly and its compare-and-set on the
//! stored version is what keeps a stale tab from overwriting.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::core::error::SessileError;

#[wasm_bindgen(module = "/src/web/locks.js")]
extern "C" {
    #[wasm_bindgen(js_name = hasLocks)]
    fn has_locks() -> bool;
    #[wasm_bindgen(js_name = withLock)]
    fn with_lock(name: &str, task: &Closure<dyn FnMut() -> Promise>) -> Promise;
}

/// Whether this browser has Web Locks (for diagnostics).
pub(crate) fn available() -> bool {
    has_locks()
}

/// Runs `work` while holding the exclusive lock `name`.
pub(crate) async fn exclusive<T: 'static>(
    name: &str,
    work: impl Future<Output = Result<T, SessileError>> + 'static,
) -> Result<T, SessileError> {
    let outcome: Rc<RefCell<Option<Result<T, SessileError>>>> = Rc::new(RefCell::new(None));
    let sink = outcome.clone();
    let mut work = Some(work);
    let task = Closure::<dyn FnMut() -> Promise>::new(move || {
        let sink = sink.clone();
        let work = work.take();
        super::page::promise(async move {
            if let Some(work) = work {
                *sink.borrow_mut() = Some(work.await);
            }
            Ok(JsValue::UNDEFINED)
        })
    });
    let locked = JsFuture::from(with_lock(name, &task)).await;
    let result = outcome.borrow_mut().take();
    match (result, locked) {
        (Some(result), _) => result,
        (None, Err(e)) => Err(SessileError::StorageUnavailable {
            reason: format!("the write lock failed: {}", super::convert::js_message(&e)),
        }),
        (None, Ok(_)) => Err(SessileError::StorageUnavailable {
            reason: "the write lock was released without running the write".into(),
        }),
    }
}
