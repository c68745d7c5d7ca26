//! Serde helpers that make one type serve both wire forms: JSON for people (u64/u128 as decimal
//! strings, flags as lists of names) and the compact binary encoding for the log (native
//! integers). The choice is made by `Serializer::is_human_readable`.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serializer};
use std::fmt::Display;
use std::str::FromStr;

/// Whether `text` is the one decimal form of an integer the wire accepts: ASCII digits only (no
/// sign, no space), and no leading zero unless the number is `0` itself — so every value has
/// exactly one text, and every parser (bodies, bundles, keys files, path and query parameters)
/// reads the same text the same way. (`FromStr` for integers would also take `+7` and `007`.)
pub fn is_canonical_decimal(text: &str) -> bool {
    match text.as_bytes() {
        [] => false,
        [b'0'] => true,
        [b'0', ..] => false,
        digits => digits.iter().all(u8::is_ascii_digit),
    }
}

/// `#[serde(deserialize_with = "wire::unique_keys")]`: a JSON object read into a map, refusing
/// a key that appears twice. (serde's maps keep the last value silently, so one file could name
/// different keys to different readers; trust anchors must mean one thing.)
pub fn unique_keys<'de, D, V>(d: D) -> Result<std::collections::BTreeMap<String, V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    use serde::de::{MapAccess, Visitor};
    struct Unique<V>(std::marker::PhantomData<V>);
    impl<'de, V: Deserialize<'de>> Visitor<'de> for Unique<V> {
        type Value = std::collections::BTreeMap<String, V>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object whose keys are all different")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = std::collections::BTreeMap::new();
            while let Some((key, value)) = map.next_entry::<String, V>()? {
                if out.contains_key(&key) {
                    return Err(A::Error::custom(format!("duplicate key {key:?}")));
                }
                out.insert(key, value);
            }
            Ok(out)
        }
    }
    d.deserialize_map(Unique(std::marker::PhantomData))
}

/// `#[serde(with = "wire::dec")]`: integers as decimal strings in JSON, native in binary.
pub mod dec {
    use super::*;

    /// Serialize an integer; JSON gets a decimal string.
    pub fn serialize<T, S>(value: &T, s: S) -> Result<S::Ok, S::Error>
    where
        T: Display + serde::Serialize,
        S: Serializer,
    {
        if s.is_human_readable() {
            s.collect_str(value)
        } else {
            value.serialize(s)
        }
    }

    /// Deserialize an integer; JSON must carry a decimal string of digits only.
    pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr + Deserialize<'de>,
        D: Deserializer<'de>,
    {
        if d.is_human_readable() {
            let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
            parse_decimal(&text).map_err(D::Error::custom)
        } else {
            T::deserialize(d)
        }
    }

    pub(super) fn parse_decimal<T: FromStr>(text: &str) -> Result<T, String> {
        if !super::is_canonical_decimal(text) {
            return Err(format!(
                "expected a decimal string of digits without leading zeros, got {text:?}"
            ));
        }
        text.parse::<T>()
            .map_err(|_| format!("decimal string out of range: {text:?}"))
    }
}

/// `#[serde(with = "wire::opt_dec")]`: an optional integer as a decimal string (or `null`) in
/// JSON, native in binary; pair it with `#[serde(default)]` when the field may be absent.
pub mod opt_dec {
    use super::*;

    /// Serialize an optional integer; JSON gets a decimal string or `null`.
    pub fn serialize<T, S>(value: &Option<T>, s: S) -> Result<S::Ok, S::Error>
    where
        T: Display + serde::Serialize,
        S: Serializer,
    {
        match value {
            Some(v) => dec::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    /// Deserialize an optional integer; JSON must carry a canonical decimal string or `null`.
    pub fn deserialize<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
    where
        T: FromStr + Deserialize<'de>,
        D: Deserializer<'de>,
    {
        if d.is_human_readable() {
            match <Option<std::borrow::Cow<'de, str>>>::deserialize(d)? {
                Some(text) => dec::parse_decimal(&text)
                    .map(Some)
                    .map_err(D::Error::custom),
                None => Ok(None),
            }
        } else {
            <Option<T>>::deserialize(d)
        }
    }
}

/// Flag sets: a list of names in JSON, a bit set in binary.
pub trait FlagSet: Sized + Copy {
    /// Every flag with its wire name, in bit order.
    const NAMES: &'static [(&'static str, u16)];
    /// The raw bits.
    fn bits(self) -> u16;
    /// Build from raw bits; unknown bits are kept so that validation can reject them.
    fn from_bits(bits: u16) -> Self;

    /// Serialize as names (JSON) or bits (binary).
    fn serialize_flags<S: Serializer>(self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            use serde::ser::SerializeSeq;
            let names: Vec<&str> = Self::NAMES
                .iter()
                .filter(|(_, bit)| self.bits() & bit != 0)
                .map(|(name, _)| *name)
                .collect();
            let mut seq = s.serialize_seq(Some(names.len()))?;
            for name in names {
                seq.serialize_element(name)?;
            }
            seq.end()
        } else {
            s.serialize_u16(self.bits())
        }
    }

    /// Deserialize from names (JSON; unknown names are an error) or bits (binary).
    fn deserialize_flags<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let names = Vec::<std::borrow::Cow<'de, str>>::deserialize(d)?;
            let mut bits = 0u16;
            for name in &names {
                let bit = Self::NAMES
                    .iter()
                    .find(|(known, _)| known == name)
                    .map(|(_, bit)| *bit)
                    .ok_or_else(|| D::Error::custom(format!("unknown flag {name:?}")))?;
                if bits & bit != 0 {
                    return Err(D::Error::custom(format!("flag {name:?} given twice")));
                }
                bits |= bit;
            }
            Ok(Self::from_bits(bits))
        } else {
            Ok(Self::from_bits(u16::deserialize(d)?))
        }
    }
}

/// Byte strings as lower-case hex in JSON (one canonical form: upper case is refused), native
/// in binary. `#[serde(with = "wire::hex")]` on a `Vec<u8>`; [`hash`], [`hashes`] and
/// [`signature`] do the same for [`crate::Hash`], `Vec<Hash>` and `[u8; 64]`.
pub mod hex {
    use super::*;

    /// Lower-case hex of `bytes`.
    pub fn encode(bytes: &[u8]) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(bytes.len() * 2);
        for b in bytes {
            out.push(char::from(DIGITS[usize::from(b >> 4)]));
            out.push(char::from(DIGITS[usize::from(b & 0xf)]));
        }
        out
    }

    /// Parse lower-case hex; `None` on odd length or any other character.
    pub fn decode(text: &str) -> Option<Vec<u8>> {
        fn digit(c: u8) -> Option<u8> {
            match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                _ => None,
            }
        }
        let bytes = text.as_bytes();
        if !bytes.len().is_multiple_of(2) {
            return None;
        }
        bytes
            .chunks_exact(2)
            .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
            .collect()
    }

    /// Parse exactly `N` bytes of lower-case hex.
    pub fn decode_array<const N: usize>(text: &str) -> Option<[u8; N]> {
        decode(text)?.try_into().ok()
    }

    /// Serialize bytes; JSON gets lower-case hex.
    pub fn serialize<S: Serializer>(value: &[u8], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&encode(value))
        } else {
            serde::Serialize::serialize(value, s)
        }
    }

    /// Deserialize bytes; JSON must carry lower-case hex.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        if d.is_human_readable() {
            let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
            decode(&text).ok_or_else(|| D::Error::custom("expected lower-case hex"))
        } else {
            Vec::<u8>::deserialize(d)
        }
    }
}

/// `#[serde(with = "wire::hash")]`: a [`crate::Hash`] as 64 lower-case hex digits in JSON.
pub mod hash {
    use super::*;
    use crate::merkle::Hash;

    /// Serialize a hash.
    pub fn serialize<S: Serializer>(value: &Hash, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&hex::encode(&value.0))
        } else {
            serde::Serialize::serialize(value, s)
        }
    }

    /// Deserialize a hash.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
        if d.is_human_readable() {
            let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
            hex::decode_array(&text)
                .map(Hash)
                .ok_or_else(|| D::Error::custom("expected 64 lower-case hex digits"))
        } else {
            Hash::deserialize(d)
        }
    }
}

/// `#[serde(with = "wire::hashes")]`: a list of hashes, each as in [`hash`].
pub mod hashes {
    use super::*;
    use crate::merkle::Hash;

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Item(#[serde(with = "super::hash")] Hash);

    /// Serialize a list of hashes.
    pub fn serialize<S: Serializer>(value: &[Hash], s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(value.len()))?;
        for h in value {
            seq.serialize_element(&Item(*h))?;
        }
        seq.end()
    }

    /// Deserialize a list of hashes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Hash>, D::Error> {
        Ok(Vec::<Item>::deserialize(d)?
            .into_iter()
            .map(|i| i.0)
            .collect())
    }
}

/// `#[serde(with = "wire::signature")]`: a 64-byte signature as 128 lower-case hex digits.
pub mod signature {
    use super::*;

    /// Serialize a signature.
    pub fn serialize<S: Serializer>(value: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        hex::serialize(value, s)
    }

    /// Deserialize a signature.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        let bytes = hex::deserialize(d)?;
        bytes
            .try_into()
            .map_err(|_| D::Error::custom("expected a 64-byte signature"))
    }
}
