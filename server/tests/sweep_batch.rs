//! The sweeper inside one engine batch (found by the `session_engine` fuzz
//! target, fuzz/corpus/session_engine/regression-zombie-after-sweep): a
//! session ended in a batch and removed by a sweep later in the same batch
//! (`olderThanSecs: 0`) must stay removed; a later call in that batch must
//! not read its older row back from the store and change it. Runs the
//! engine's logic on one thread over the in-memory store.

use serde_json::json;
use sessile::core::protocol::{Hello, Message, Op, OpId, PROTOCOL_VERSION};
use sessile_server::maintenance::SweepOptions;
use sessile_server::sessions::{CreateRequest, Limits, Sessions};
use sessile_server::store::MemoryStore;

const CLIENT: &str = "0123456789abcdef0123456789abcdef";
const NOW: u64 = 1_700_000_000_000;

fn sessions(store: &MemoryStore) -> Sessions {
    let limits = Limits {
        max_state_bytes: 1 << 20,
        max_sessions_per_key: 10,
        heartbeat_ms: 5_000,
        stale_warning_secs: 900,
        stale_secs: 1_200,
        retention_secs: 3_600,
        audit_retention_secs: 7_200,
    };
    Sessions::new(Box::new(store.clone()), limits)
}

#[test]
fn a_session_removed_in_a_batch_is_not_changed_later_in_it() {
    let store = MemoryStore::new();
    let mut s = sessions(&store);
    let created = s.create(CreateRequest::default(), NOW).unwrap();
    s.commit_batch().unwrap();
    let (id, token) = (created.id, created.token);

    // One batch: end, an admin sweep of everything ended, then an op and a
    // hello from a client that had not heard of the end.
    s.end(&id, &token, NOW + 1).unwrap();
    let opts = SweepOptions {
        older_than_secs: Some(0),
        ..SweepOptions::default()
    };
    let swept = s.sweep(&opts, NOW + 1).unwrap();
    let op = Op {
        id: OpId {
            client: CLIENT.into(),
            seq: 1,
        },
        base: 1,
        patch: json!({"cart": 1}),
        to: None,
    };
    let answer = s.op(&id, op, NOW + 1);
    let hello = Hello {
        protocol: PROTOCOL_VERSION.into(),
        session: id.clone(),
        token: token.clone(),
        client: CLIENT.into(),
        have_version: 0,
    };
    let welcome = s.hello(&hello, NOW + 1);
    s.commit_batch().unwrap();

    let acked = matches!(&answer, Ok(Message::Ack(a)) if !a.duplicate);
    assert!(
        !acked,
        "an op was acknowledged on an ended session: {answer:?}"
    );
    assert!(welcome.is_err(), "an ended session welcomed a client");
    match store.record(&id) {
        // Removed at once: nothing of it may be left.
        None => {
            assert_eq!(swept.removed, vec![id.clone()]);
            assert!(
                store.patch_log(&id).is_empty(),
                "patches of a removed session"
            );
        }
        // Or left for the next sweep: ended, as the batch said.
        Some(rec) => {
            assert!(swept.removed.is_empty());
            assert_eq!(rec.status, "terminated");
            assert_eq!(rec.version, 2);
        }
    }
}

#[test]
fn a_second_sweep_in_the_batch_does_not_see_what_the_first_removed() {
    let store = MemoryStore::new();
    let mut s = sessions(&store);
    let ended = s.create(CreateRequest::default(), NOW).unwrap();
    let kept = s.create(CreateRequest::default(), NOW).unwrap();
    s.commit_batch().unwrap();
    s.end(&ended.id, &ended.token, NOW + 1).unwrap();
    s.commit_batch().unwrap();

    let opts = SweepOptions {
        older_than_secs: Some(0),
        ..SweepOptions::default()
    };
    assert_eq!(
        s.sweep(&opts, NOW + 2).unwrap().removed,
        vec![ended.id.clone()]
    );
    let again = s
        .sweep(&opts, NOW + 2)
        .expect("a second sweep in the same batch");
    assert!(again.removed.is_empty() && again.expired.is_empty());
    assert_eq!(s.health(NOW + 2).unwrap().total, 1);
    s.commit_batch().unwrap();
    assert_eq!(store.ids(), vec![kept.id]);
}
