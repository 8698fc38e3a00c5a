//! [`VecMap`]: an ordered map in a sorted `Vec`, for the few small maps
//! of the client's engines and drivers (versions held ahead of a gap,
//! clients' applied sequences, the other tabs' register entries, the
//! page's migrations, a declared flow's statuses and rows). Each `BTreeMap` of other key and value types
//! brings its own copy of the B-tree's code into the wasm module, 2 to
//! 5 KB each (docs/PERFORMANCE.md); this is a binary search and
//! `Vec::insert`.

use std::borrow::Borrow;

/// A map ordered by key, kept as a sorted list of entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VecMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for VecMap<K, V> {
    fn default() -> Self {
        VecMap {
            entries: Vec::new(),
        }
    }
}

impl<K: Ord, V> VecMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    fn find<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        self.entries.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    /// Sets `key` to `value`, returning the value it replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(at) => Some(std::mem::replace(&mut self.entries[at].1, value)),
            Err(at) => {
                self.entries.insert(at, (key, value));
                None
            }
        }
    }

    /// The value of `key`.
    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|at| &self.entries[at].1)
    }

    /// The value of `key`, set to `default` first when there is none.
    pub fn get_or_insert(&mut self, key: K, default: V) -> &mut V {
        let at = match self.find(&key) {
            Ok(at) => at,
            Err(at) => {
                self.entries.insert(at, (key, default));
                at
            }
        };
        &mut self.entries[at].1
    }

    /// Takes `key`'s entry out, returning its value.
    pub fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|at| self.entries.remove(at).1)
    }

    /// Keeps only the entries `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.entries.retain_mut(|(k, v)| keep(k, v));
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries, in key order.
    pub fn iter(&self) -> Iter<'_, K, V> {
        self.into_iter()
    }
}

/// The entries of a [`VecMap`], in key order.
pub type Iter<'a, K, V> = std::iter::Map<std::slice::Iter<'a, (K, V)>, fn(&(K, V)) -> (&K, &V)>;

impl<'a, K, V> IntoIterator for &'a VecMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = Iter<'a, K, V>;

    fn into_iter(self) -> Self::IntoIter {
        fn pair<K, V>((k, v): &(K, V)) -> (&K, &V) {
            (k, v)
        }
        self.entries.iter().map(pair as fn(&(K, V)) -> (&K, &V))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::VecMap;

    /// The same operations on a `BTreeMap` and a `VecMap` give the same
    /// answers and leave the same entries, in order.
    #[test]
    fn behaves_as_a_btree_map() {
        let mut seed = 17u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed >> 33
        };
        let mut b = BTreeMap::new();
        let mut v = VecMap::new();
        for _ in 0..5000 {
            let key = next() % 64;
            match next() % 5 {
                0 | 1 => {
                    let value = next();
                    assert_eq!(v.insert(key, value), b.insert(key, value));
                }
                2 => assert_eq!(v.remove(&key), b.remove(&key)),
                3 => assert_eq!(v.get(&key), b.get(&key)),
                _ => {
                    *v.get_or_insert(key, 0) += 1;
                    *b.entry(key).or_insert(0) += 1;
                }
            }
            if next() % 97 == 0 {
                let cut = next() % 64;
                v.retain(|k, _| *k > cut);
                b.retain(|k, _| *k > cut);
            }
            assert_eq!(v.len(), b.len());
            assert_eq!(v.is_empty(), b.is_empty());
        }
        assert!(v.iter().eq(b.iter()));
        assert!((&v).into_iter().eq(&b));
        let listed: Vec<_> = b.into_iter().collect();
        assert_eq!(v.entries, listed);
        v.clear();
        assert!(v.is_empty());
    }
}
