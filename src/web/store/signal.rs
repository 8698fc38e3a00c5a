//! A one-shot value handed from a browser callback (or the driver's pump)
//! to the `async` code waiting for it: the first `send` wins, later ones are
//! ignored, and the receiver is a future. Single-threaded, like the page.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

struct Slot<T> {
    value: Option<T>,
    sent: bool,
    waker: Option<Waker>,
}

/// The sending half; cloned into every callback that may settle it.
pub(crate) struct Sender<T>(Rc<RefCell<Slot<T>>>);

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

/// The receiving half: a future of the value sent.
pub(crate) struct Receiver<T>(Rc<RefCell<Slot<T>>>);

/// A new one-shot channel.
pub(crate) fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let slot = Rc::new(RefCell::new(Slot {
        value: None,
        sent: false,
        waker: None,
    }));
    (Sender(slot.clone()), Receiver(slot))
}

impl<T> Sender<T> {
    /// Settles the receiver with `value`, unless something was sent before.
    pub(crate) fn send(&self, value: T) {
        let waker = {
            let mut slot = self.0.borrow_mut();
            if slot.sent {
                return;
            }
            slot.sent = true;
            slot.value = Some(value);
            slot.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Future for Receiver<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut slot = self.0.borrow_mut();
        match slot.value.take() {
            Some(value) => Poll::Ready(value),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
