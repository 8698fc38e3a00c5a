//! Schema versions of the page's state: which migrations a stored state needs
//! to reach the page's current schema, and the refusal of a newer one (a page
//! older than the data must not overwrite it).

use super::error::{Result, SessileError};

/// The schema versions a stored state passes through to reach `current`:
/// each `v` in the result is one migration from `v` to `v + 1`. Empty when
/// the stored state is current; `SCHEMA_TOO_NEW` when it is newer.
pub fn migration_steps(stored: u32, current: u32) -> Result<std::ops::Range<u32>> {
    if stored > current {
        return Err(SessileError::SchemaTooNew { stored, current });
    }
    Ok(stored..current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_between_versions() {
        assert_eq!(migration_steps(3, 3).unwrap().count(), 0);
        assert_eq!(
            migration_steps(1, 4).unwrap().collect::<Vec<_>>(),
            [1, 2, 3]
        );
        let err = migration_steps(5, 4).unwrap_err();
        assert_eq!(err.code(), "SCHEMA_TOO_NEW");
        assert!(err.to_string().contains('5') && err.to_string().contains('4'));
    }
}
