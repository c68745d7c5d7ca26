//! Serde helpers that make one type serve both wire forms: JSON for people (u64/u128 as decimal
//! strings, flags as lists of names) and the compact binary encoding for the log (native
//! integers). The choice is made by `Serializer::is_human_readable`.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serializer};
use std::fmt::Display;
use std::str::FromStr;

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

    fn parse_decimal<T: FromStr>(text: &str) -> Result<T, String> {
        // FromStr for integers accepts a leading '+'; the wire form does not.
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("expected a decimal string of digits, got {text:?}"));
        }
        text.parse::<T>()
            .map_err(|_| format!("decimal string out of range: {text:?}"))
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
                bits |= bit;
            }
            Ok(Self::from_bits(bits))
        } else {
            Ok(Self::from_bits(u16::deserialize(d)?))
        }
    }
}
