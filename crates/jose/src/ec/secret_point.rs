//! An OpenSSL EC point that holds a secret (the ECDH shared point) and is
//! wiped when dropped. The `openssl` crate frees every `EcPoint` with
//! `EC_POINT_free`, which leaves the coordinates in freed memory; OpenSSL's
//! `EC_POINT_clear_free` wipes them first, but the crate does not bind it.
//! This module is the crate's only unsafe code: one foreign call, on a
//! pointer it owns.
#![allow(unsafe_code)]

use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};

use foreign_types::ForeignType as _;
use openssl::ec::{EcGroupRef, EcPoint, EcPointRef};
use openssl::error::ErrorStack;

extern "C" {
    /// libcrypto (linked by `openssl-sys`): wipes the point's coordinates,
    /// then frees it (OpenSSL's `ec.h`).
    fn EC_POINT_clear_free(point: *mut openssl_sys::EC_POINT);
}

/// An EC point for a secret value: it derefs to the point, and dropping
/// it wipes and frees it with `EC_POINT_clear_free` (never `EC_POINT_free`).
pub(crate) struct SecretPoint(ManuallyDrop<EcPoint>);

impl SecretPoint {
    /// A new point (at infinity) on `group`.
    pub(crate) fn new(group: &EcGroupRef) -> Result<SecretPoint, ErrorStack> {
        EcPoint::new(group).map(|point| SecretPoint(ManuallyDrop::new(point)))
    }
}

impl Deref for SecretPoint {
    type Target = EcPointRef;

    fn deref(&self) -> &EcPointRef {
        &self.0
    }
}

impl DerefMut for SecretPoint {
    fn deref_mut(&mut self) -> &mut EcPointRef {
        &mut self.0
    }
}

impl Drop for SecretPoint {
    fn drop(&mut self) {
        #[cfg(test)]
        tests::CLEARED.with(|cleared| cleared.set(cleared.get() + 1));
        // SAFETY: the pointer comes from a live `EcPoint` that this guard
        // owns alone (it is never handed out, only borrowed through
        // `Deref`), and `ManuallyDrop` keeps `EcPoint`'s own drop (which
        // would call `EC_POINT_free`) from running, so the point is freed
        // exactly once, here, and nothing uses it afterwards.
        unsafe { EC_POINT_clear_free(self.0.as_ptr()) }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]

    use std::cell::Cell;

    use openssl::bn::{BigNum, BigNumContext};

    use super::*;
    use crate::key::p256_group;

    thread_local! {
        /// How many secret points this thread has wiped and freed.
        pub(crate) static CLEARED: Cell<usize> = const { Cell::new(0) };
    }

    pub(crate) fn cleared() -> usize {
        CLEARED.with(Cell::get)
    }

    /// The guard is a usable point (OpenSSL computes into it through the
    /// `DerefMut`) and goes through the clearing free exactly once.
    #[test]
    fn a_secret_point_works_as_a_point_and_is_cleared_once() {
        let group = p256_group().unwrap();
        let mut ctx = BigNumContext::new().unwrap();
        let before = cleared();
        {
            let mut point = SecretPoint::new(group).unwrap();
            assert!(point.is_infinity(group));
            let two = BigNum::from_u32(2).unwrap();
            point.mul_generator2(group, &two, &mut ctx).unwrap();
            let generator = group.generator_opt().unwrap();
            let mut doubled = EcPoint::new(group).unwrap();
            doubled.add(group, generator, generator, &mut ctx).unwrap();
            assert!(point.eq(group, &doubled, &mut ctx).unwrap());
            assert_eq!(cleared(), before);
        }
        assert_eq!(cleared(), before + 1);
    }
}
