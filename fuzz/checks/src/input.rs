//! Reading a fuzzer's bytes as choices: numbers, picks from a list, and
//! JSON values built from a small alphabet of keys (so that patches and
//! states share paths and overlap often). Every read succeeds: past the end
//! of the input it reads zeros, so every input means something.

use serde_json::{Map, Number, Value};

/// Keys most generated objects use: few enough that two patches often
/// touch the same path.
const KEYS: [&str; 5] = ["a", "b", "c", "cart", "step"];

/// The fuzzer's bytes, read front to back.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// Reads `data` from its first byte.
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next byte (0 past the end).
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    /// A number below `n` (`n` > 0), from one byte (two when `n` > 256).
    pub fn below(&mut self, n: usize) -> usize {
        if n <= 256 {
            usize::from(self.byte()) % n
        } else {
            usize::from(self.u16()) % n
        }
    }

    /// One of `items` (not empty).
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// A coin: true one time in `n`.
    pub fn one_in(&mut self, n: u8) -> bool {
        self.byte() % n == 0
    }

    /// Two bytes, little-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    /// Four bytes, little-endian.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    /// Eight bytes, little-endian.
    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }

    /// Up to `n` of the next bytes.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// Every byte not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }

    /// A short string: one of a few keys, or up to 8 bytes of the input
    /// (invalid UTF-8 replaced).
    pub fn string(&mut self) -> String {
        if self.one_in(4) {
            let n = self.below(9);
            String::from_utf8_lossy(self.bytes(n)).into_owned()
        } else {
            self.pick(&KEYS).to_string()
        }
    }

    /// A JSON number: small and large integers, negative ones and doubles
    /// of any bits (a non-finite one becomes 0.5).
    pub fn number(&mut self) -> Value {
        match self.below(4) {
            0 => Value::from(self.byte() % 10),
            1 => Value::from(self.u64()),
            2 => Value::from(-i64::from(self.u32())),
            _ => {
                let f = f64::from_bits(self.u64());
                Number::from_f64(f).map_or(Value::from(0.5), Value::Number)
            }
        }
    }

    /// A JSON value nested at most `depth` deep.
    pub fn value(&mut self, depth: u8) -> Value {
        let tag = self.below(if depth == 0 { 4 } else { 8 });
        match tag {
            0 => Value::Null,
            1 => Value::Bool(self.one_in(2)),
            2 => self.number(),
            3 => Value::String(self.string()),
            4 => {
                let n = self.below(4);
                Value::Array((0..n).map(|_| self.value(depth - 1)).collect())
            }
            _ => self.object(depth - 1),
        }
    }

    /// A JSON object of up to 4 keys whose values nest at most `depth` deep.
    pub fn object(&mut self, depth: u8) -> Value {
        let n = self.below(5);
        let mut map = Map::new();
        for _ in 0..n {
            let key = self.string();
            let value = self.value(depth);
            map.insert(key, value);
        }
        Value::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_zeros_past_the_end_and_builds_values() {
        let mut input = Input::new(&[1, 2]);
        assert_eq!(input.u16(), 0x0201);
        assert!(input.is_empty());
        assert_eq!((input.byte(), input.below(7), input.u64()), (0, 0, 0));
        assert_eq!(input.value(3), Value::Null);
        let mut input = Input::new(&[6, 1, 0, 1, 0, 0]);
        // An object (tag 6) of one key "a" holding an object of no keys... then zeros.
        assert!(input.value(3).is_object());
    }
}
