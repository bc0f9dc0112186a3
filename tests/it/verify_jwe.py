"""Independent check of a Gatehouse access token with jwcrypto (not josekit):
decrypt the JWE with the resource server's private key, verify the nested
JWS against Gatehouse's published JWKS, print the claims as JSON.
Input on stdin: {"token": ..., "private_jwk": {...}, "jwks": {...}}."""
import json
import sys

from jwcrypto import jwe, jwk, jws

data = json.load(sys.stdin)
key = jwk.JWK(**data["private_jwk"])
outer = jwe.JWE()
outer.allowed_algs = ["RSA-OAEP-256", "ECDH-ES+A256KW", "A256GCM"]
outer.deserialize(data["token"], key=key)
header = outer.jose_header
assert header.get("cty") == "JWT", header
inner = jws.JWS()
inner.deserialize(outer.payload.decode())
kid = inner.jose_header["kid"]
keys = jwk.JWKSet.from_json(json.dumps(data["jwks"]))
inner.allowed_algs = ["ES256", "RS256", "PS256", "EdDSA"]
inner.verify(keys.get_key(kid))
assert inner.jose_header["typ"] == "at+jwt", inner.jose_header
print(json.dumps({"header": inner.jose_header, "claims": json.loads(inner.payload)}))
