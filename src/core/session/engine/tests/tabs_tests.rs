//! Two tabs of a synced session.
