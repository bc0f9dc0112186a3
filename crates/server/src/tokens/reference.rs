//! The `gh_ref` protected-header member of Gatehouse's JWE access tokens:
//! what it seals, in its compact form and the JSON form of the release
//! before.

use serde::Serialize;

use crate::token_status::StatusIndex;

/// What Gatehouse seals into the protected header of every JWE access token
/// (`gh_ref`): the token id, from which it derives the key that decrypts a
/// token encrypted to a resource server, and what the token's claims do not
/// say (its grant, and its global status-list index). Not the claims: those
/// are read from the decrypted, verified token itself. Sealed so the grant
/// stays private and cannot be swapped. Resource servers ignore the member
/// (it is not marked critical).
#[derive(Debug, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TokenRef {
    pub(super) jti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) fam: Option<String>,
    /// The global status-list index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) sli: Option<i64>,
}

/// First byte of the compact (binary) form of a [`TokenRef`]. JSON forms
/// start with `{`, so the two never mix up.
const COMPACT: u8 = 2;
/// Flags of the compact form: a grant follows; the status index follows in
/// 4 bytes; in 8 bytes.
const HAS_FAMILY: u8 = 1;
const SLI_U32: u8 = 2;
const SLI_I64: u8 = 4;

impl TokenRef {
    /// What is sealed into `gh_ref`. Compact when the ids are UUIDs (always,
    /// for ids Gatehouse makes): `2 | jti (16) | flags | grant (16)? |
    /// index (4 or 8)?`, about 40 bytes where the JSON form takes about 100
    /// (every byte here costs 1.8 in the token: sealed, then base64url
    /// twice). JSON otherwise.
    pub(super) fn encode(&self) -> Result<Vec<u8>, serde_json::Error> {
        let jti = uuid::Uuid::try_parse(&self.jti).ok();
        let fam = match &self.fam {
            Some(f) => uuid::Uuid::try_parse(f).ok().map(Some),
            None => Some(None),
        };
        let (Some(jti), Some(fam)) = (jti, fam) else {
            return serde_json::to_vec(self);
        };
        // Only the hyphenated form round-trips to the same string.
        if jti.hyphenated().to_string() != self.jti
            || fam.is_some_and(|f| Some(f.hyphenated().to_string()) != self.fam)
        {
            return serde_json::to_vec(self);
        }
        let mut out = Vec::with_capacity(46);
        out.push(COMPACT);
        out.extend_from_slice(jti.as_bytes());
        let mut flags = 0;
        if fam.is_some() {
            flags |= HAS_FAMILY;
        }
        match self.sli {
            Some(i) if u32::try_from(i).is_ok() => flags |= SLI_U32,
            Some(_) => flags |= SLI_I64,
            None => {}
        }
        out.push(flags);
        if let Some(f) = fam {
            out.extend_from_slice(f.as_bytes());
        }
        if let Some(i) = self.sli {
            match u32::try_from(i) {
                Ok(small) => out.extend_from_slice(&small.to_be_bytes()),
                Err(_) => out.extend_from_slice(&i.to_be_bytes()),
            }
        }
        Ok(out)
    }

    /// Reads the compact form; `None` for anything else or anything left over.
    fn decode_compact(bytes: &[u8]) -> Option<TokenRef> {
        let (&COMPACT, rest) = bytes.split_first()? else {
            return None;
        };
        let (jti, rest) = rest.split_first_chunk::<16>()?;
        let (&flags, mut rest) = rest.split_first()?;
        let both_widths = SLI_U32 | SLI_I64;
        if flags & !(HAS_FAMILY | both_widths) != 0 || flags & both_widths == both_widths {
            return None;
        }
        let fam = if flags & HAS_FAMILY != 0 {
            let (f, r) = rest.split_first_chunk::<16>()?;
            rest = r;
            Some(uuid::Uuid::from_bytes(*f).hyphenated().to_string())
        } else {
            None
        };
        let sli = if flags & SLI_U32 != 0 {
            let (n, r) = rest.split_first_chunk::<4>()?;
            rest = r;
            Some(i64::from(u32::from_be_bytes(*n)))
        } else if flags & SLI_I64 != 0 {
            let (n, r) = rest.split_first_chunk::<8>()?;
            rest = r;
            Some(i64::from_be_bytes(*n))
        } else {
            None
        };
        if !rest.is_empty() {
            return None;
        }
        Some(TokenRef {
            jti: uuid::Uuid::from_bytes(*jti).hyphenated().to_string(),
            fam,
            sli,
        })
    }
}

impl TokenRef {
    /// Reads an opened `gh_ref`: the compact form, or the JSON form written
    /// before it (still read for the release that changed it, so tokens
    /// issued before an upgrade, or by an older instance during a rolling
    /// one, stay readable).
    pub(super) fn parse(bytes: &[u8]) -> Option<TokenRef> {
        if bytes.first() == Some(&COMPACT) {
            return TokenRef::decode_compact(bytes);
        }
        serde_json::from_slice(bytes).ok()
    }

    /// The grant and the status index the reference records.
    pub(super) fn into_family_and_status(self) -> (Option<String>, Option<StatusIndex>) {
        (self.fam, self.sli.map(StatusIndex))
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn round_trip(r: TokenRef) -> (usize, TokenRef) {
        let bytes = r.encode().expect("encode");
        let Some(back) = TokenRef::parse(&bytes) else {
            panic!("does not parse back");
        };
        (bytes.len(), back)
    }

    #[test]
    fn compact_form_round_trips_every_shape() {
        let jti = uuid::Uuid::new_v4().to_string();
        let fam = uuid::Uuid::new_v4().to_string();
        for (fam, sli) in [
            (Some(fam.clone()), Some(7)),
            (None, Some(i64::from(u32::MAX))),
            (Some(fam.clone()), Some(i64::from(u32::MAX) + 1)),
            (None, None),
        ] {
            let (len, back) = round_trip(TokenRef {
                jti: jti.clone(),
                fam: fam.clone(),
                sli,
            });
            assert!(len <= 42, "{len} bytes");
            assert_eq!((back.jti, back.fam, back.sli), (jti.clone(), fam, sli));
        }
    }

    #[test]
    fn ids_that_are_not_hyphenated_uuids_keep_the_json_form() {
        for jti in ["not-a-uuid", &uuid::Uuid::new_v4().simple().to_string()] {
            let r = TokenRef {
                jti: jti.to_owned(),
                fam: None,
                sli: Some(1),
            };
            let bytes = r.encode().expect("encode");
            assert_eq!(bytes.first(), Some(&b'{'));
            let (_, back) = round_trip(r);
            assert_eq!(back.jti, jti);
        }
    }

    #[test]
    fn damaged_compact_forms_are_refused() {
        let r = TokenRef {
            jti: uuid::Uuid::new_v4().to_string(),
            fam: Some(uuid::Uuid::new_v4().to_string()),
            sli: Some(3),
        };
        let bytes = r.encode().expect("encode");
        for cut in 1..bytes.len() {
            assert!(TokenRef::parse(&bytes[..cut]).is_none(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(TokenRef::parse(&longer).is_none());
        let mut both = bytes.clone();
        both[17] |= SLI_I64;
        assert!(TokenRef::parse(&both).is_none());
        let mut unknown = bytes;
        unknown[17] |= 0x80;
        assert!(TokenRef::parse(&unknown).is_none());
    }
}
