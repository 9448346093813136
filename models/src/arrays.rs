//! Serde for fixed-size arrays of any length (serde's derives stop at 32 and cannot take a const
//! generic length): `#[serde(with = "crate::arrays")]`. Arrays are written as sequences; reading one of
//! the wrong length is an error, never a panic.

use serde::de::{Deserialize, Deserializer, Error};
use serde::ser::{Serialize, Serializer};

pub fn serialize<S: Serializer, T: Serialize, const N: usize>(a: &[T; N], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(a.iter())
}

pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>, const N: usize>(d: D) -> Result<[T; N], D::Error> {
    let v: Vec<T> = Vec::deserialize(d)?;
    let len = v.len();
    v.try_into().map_err(|_| D::Error::custom(format!("expected an array of {N} elements, found {len}")))
}
