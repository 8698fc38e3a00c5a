//! Targets `frame_to_server` and `frame_to_client`: the protocol's frame
//! decoder (`src/core/protocol.rs`) on any bytes, seeded and steered with
//! the frames each side receives (the server: `hello`, `op`, `ping`,
//! `extend`, `bye`; a client: `welcome`, `ack`, `reject`, `patch`, `pong`,
//! `extended`, `error`, `bye`). The input is the frame itself.
//!
//! Asserts: decoding never panics; an error is `FRAME_TOO_LARGE`,
//! `UNSUPPORTED_PROTOCOL_VERSION` or `PROTOCOL_ERROR`; a decoded `hello`
//! speaks this protocol with well-formed ids, an `op` has a well-formed
//! client id and a sequence from 1, a `welcome` speaks this protocol; and
//! every frame that decodes encodes to a frame that decodes to the same
//! message, `decode(encode(m)) == m`, whose encoding is a fixed point.

use sessile::core::protocol::{
    decode, encode, is_id, Message, DEFAULT_MAX_FRAME_BYTES, PROTOCOL_VERSION,
};

/// The codes the decoder may answer.
const DECODE_CODES: [&str; 3] = [
    "FRAME_TOO_LARGE",
    "UNSUPPORTED_PROTOCOL_VERSION",
    "PROTOCOL_ERROR",
];

/// Target `frame_to_server`: frames as the server reads them.
pub mod frame_to_server {
    /// Runs the target on one input.
    pub fn check(data: &[u8]) {
        super::check_frame(data);
    }
}

/// Target `frame_to_client`: frames as a client reads them.
pub mod frame_to_client {
    /// Runs the target on one input.
    pub fn check(data: &[u8]) {
        super::check_frame(data);
    }
}

/// The assertions on one frame.
pub fn check_frame(data: &[u8]) {
    let msg = match decode(data, DEFAULT_MAX_FRAME_BYTES) {
        Err(e) => {
            assert!(DECODE_CODES.contains(&e.code()), "unexpected code: {e:?}");
            return;
        }
        Ok(msg) => msg,
    };
    match &msg {
        Message::Hello(h) => {
            assert_eq!(h.protocol, u64::from(PROTOCOL_VERSION));
            assert!(is_id(&h.session) && is_id(&h.client), "{h:?}");
        }
        Message::Op(op) => {
            assert!(is_id(&op.id.client), "{op:?}");
            assert!(op.id.seq >= 1, "{op:?}");
        }
        Message::Welcome(w) => assert_eq!(w.protocol, PROTOCOL_VERSION),
        _ => {}
    }
    let text = encode(&msg);
    let back = decode(text.as_bytes(), usize::MAX)
        .unwrap_or_else(|e| panic!("the encoding of {msg:?} does not decode: {e}\n{text}"));
    assert_eq!(back, msg, "decode(encode(m)) != m\nframe: {text}");
    assert_eq!(encode(&back), text, "the encoding is not a fixed point");
}
