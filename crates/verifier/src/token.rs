//! The token itself: the outer JWE (decrypted with the API's key), the
//! nested JWS (verified against the issuer's JWKS) and the claims.

use super::*;

impl Verifier {
    /// Step 2: the outer JWE. Its structure is checked by the JOSE
    /// crate's [`checks::check_jwe`], the same checks Gatehouse applies to
    /// tokens addressed to itself (size cap, five parts, no `zip` or `crit`,
    /// `enc` A256GCM, exact IV, tag and wrapped-key lengths, an ECDH-ES
    /// ephemeral key on P-256), before any key is touched.
    pub(crate) fn decrypt(&self, token: &str) -> Result<String, VerifierError> {
        let header = checks::check_jwe(token).map_err(jwe_refusal)?;
        if str_member(&header, "alg") != Some(self.decryption_key.alg().as_str()) {
            return Err(VerifierError::Decrypt(
                "key management algorithm does not match the key",
            ));
        }
        if let (Some(want), Some(got)) = (&self.enc_kid, header.get("kid")) {
            if got.as_str() != Some(want.as_str()) {
                return Err(VerifierError::Decrypt("encrypted to another key"));
            }
        }
        if let Some(cty) = header.get("cty") {
            if !cty.as_str().is_some_and(|c| c.eq_ignore_ascii_case("JWT")) {
                return Err(VerifierError::Malformed("JWE content is not a JWT"));
            }
        }
        let (_, payload) = gatehouse_jose::decrypt(token, |_| Some(&self.decryption_key))
            .map_err(|_| VerifierError::Decrypt("decryption failed"))?;
        String::from_utf8(payload).map_err(|_| VerifierError::Malformed("JWE payload is not text"))
    }

    /// Step 3: the nested JWS (also used for status list tokens, with
    /// their own algorithm allow-list and size cap).
    pub(crate) async fn verify_signature(
        &self,
        jws: &str,
        allowed_algs: &[Alg],
        max_len: usize,
    ) -> Result<(Map<String, Value>, Map<String, Value>), VerifierError> {
        let mut parts = jws.split('.');
        let (Some(header_b64), Some(_), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(VerifierError::Malformed(
                "nested token is not a compact JWS",
            ));
        };
        let header =
            decode_json_part(header_b64).ok_or(VerifierError::Malformed("malformed JWS header"))?;
        checks::check_jws_header(&header).map_err(|e| VerifierError::Signature(reason(&e)))?;
        let alg = str_member(&header, "alg").ok_or(VerifierError::Signature("missing alg"))?;
        let alg = Alg::from_verification_name(alg)
            .ok()
            .filter(|alg| allowed_algs.contains(alg))
            .ok_or(VerifierError::Signature("algorithm not allowed"))?;
        let kid = str_member(&header, "kid").ok_or(VerifierError::UnknownKey)?;
        let key = self.key(kid).await?.for_alg(alg)?;
        let verified = gatehouse_jose::verify_capped(jws, max_len, &[alg], |_| Some(key.clone()))
            .map_err(|e| match e {
            JoseError::InvalidToken(r @ ("payload is not a JSON object" | "malformed payload")) => {
                VerifierError::Malformed(r)
            }
            JoseError::InvalidToken("algorithm does not match the key") => {
                VerifierError::Signature("algorithm does not match the key")
            }
            _ => VerifierError::Signature("signature verification failed"),
        })?;
        Ok((verified.header, verified.claims))
    }

    /// Step 4: the claims.
    pub(crate) fn check_claims(&self, raw: Map<String, Value>) -> Result<Claims, VerifierError> {
        if str_member(&raw, "iss") != Some(self.issuer.as_str()) {
            return Err(VerifierError::WrongIssuer);
        }
        let aud_ok = match raw.get("aud") {
            Some(Value::String(a)) => *a == self.audience,
            Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(&self.audience)),
            _ => false,
        };
        if !aud_ok {
            return Err(VerifierError::WrongAudience);
        }
        let now = self.now();
        let exp = raw
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or(VerifierError::Malformed("missing exp"))?;
        if now.saturating_sub(self.leeway) >= exp {
            return Err(VerifierError::Expired);
        }
        match raw.get("nbf") {
            None => {}
            Some(v) => {
                let nbf = v
                    .as_i64()
                    .ok_or(VerifierError::Malformed("malformed nbf"))?;
                if nbf > now.saturating_add(self.leeway) {
                    return Err(VerifierError::NotYetValid);
                }
            }
        }
        let iat = raw
            .get("iat")
            .and_then(Value::as_i64)
            .ok_or(VerifierError::Malformed("missing iat"))?;
        let sub = str_member(&raw, "sub")
            .ok_or(VerifierError::Malformed("missing sub"))?
            .to_owned();
        let scope = str_member(&raw, "scope")
            .map(|s| s.split_ascii_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        let cnf = Confirmation::from_claims(&raw)?;
        Ok(Claims {
            sub,
            client_id: str_member(&raw, "client_id").map(str::to_owned),
            scope,
            jti: str_member(&raw, "jti").map(str::to_owned),
            exp,
            iat,
            auth_time: raw.get("auth_time").and_then(Value::as_i64),
            cnf,
            raw,
        })
    }
}

/// The refusal of a JWE that failed the JOSE crate's structural checks:
/// an algorithm or content encryption this key cannot decrypt is a
/// decryption failure, anything else a malformed token.
fn jwe_refusal(e: JoseError) -> VerifierError {
    match e {
        JoseError::InvalidToken("algorithm not allowed") => {
            VerifierError::Decrypt("key management algorithm does not match the key")
        }
        JoseError::InvalidToken(r @ "content encryption must be A256GCM") => {
            VerifierError::Decrypt(r)
        }
        other => VerifierError::Malformed(reason(&other)),
    }
}

/// The short reason of a JOSE refusal.
fn reason(e: &JoseError) -> &'static str {
    match e {
        JoseError::InvalidToken(r) => r,
        _ => "malformed token",
    }
}
