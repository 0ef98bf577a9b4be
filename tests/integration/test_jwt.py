"""The jwt plugin through the real daemon: Kong's spec/03-plugins/16-jwt/03-access_spec.lua
cases (restated in ../shared/reference/kong-behaviour.md §4.6). Tokens are made here: HS* with
hmac, RS/PS/ES/EdDSA signed by the openssl command line with keys generated for the test.
"""
import base64
import hashlib
import hmac
import json
import os
import subprocess
import tempfile
import time

import harness
from harness import Gatehouse, Results, gateway_yaml, header, http_request, start_echo

r = Results()
up = start_echo("up")
tmp = tempfile.mkdtemp(prefix="gatehouse-jwt-")


def sh(*args, data=None):
    return subprocess.run(list(args), input=data, capture_output=True, check=True).stdout


def keypair(name, *genargs):
    key = os.path.join(tmp, name + ".key")
    pub = os.path.join(tmp, name + ".pub")
    sh("openssl", "genpkey", *genargs, "-out", key)
    sh("openssl", "pkey", "-in", key, "-pubout", "-out", pub)
    with open(pub) as f:
        return key, f.read()


RSA_KEY, RSA_PUB = keypair("rsa", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048")
EC_KEY, EC_PUB = keypair("ec", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")
ED_KEY, ED_PUB = keypair("ed", "-algorithm", "ED25519")


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def der_to_raw(der, size):
    """ECDSA DER (SEQUENCE of two INTEGERs) to JWS R || S."""
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7f)
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n = der[i + 1]
        v = der[i + 2:i + 2 + n].lstrip(b"\0")
        out += v.rjust(size, b"\0")
        i += 2 + n
    return out


def token(claims, alg="HS256", secret=b"s3cr3t", header_extra=None):
    hdr = {"typ": "JWT", "alg": alg}
    hdr.update(header_extra or {})
    signing = (b64(json.dumps(hdr).encode()) + "." + b64(json.dumps(claims).encode())).encode()
    if alg.startswith("HS"):
        sig = hmac.new(secret, signing, getattr(hashlib, "sha" + alg[2:])).digest()
    elif alg.startswith("RS"):
        sig = sh("openssl", "dgst", "-sha" + alg[2:], "-sign", RSA_KEY, data=signing)
    elif alg.startswith("PS"):
        sig = sh("openssl", "dgst", "-sha" + alg[2:], "-sigopt", "rsa_padding_mode:pss",
                 "-sigopt", "rsa_pss_saltlen:digest", "-sign", RSA_KEY, data=signing)
    elif alg.startswith("ES"):
        sig = der_to_raw(sh("openssl", "dgst", "-sha" + alg[2:], "-sign", EC_KEY, data=signing),
                         32)
    else:
        path = os.path.join(tmp, "data")
        with open(path, "wb") as f:
            f.write(signing)
        sig = sh("openssl", "pkeyutl", "-sign", "-inkey", ED_KEY, "-rawin", "-in", path)
    return signing.decode() + "." + b64(sig)


def indent(text, n):
    return "".join(" " * n + line + "\n" for line in text.splitlines())


CONFIG = gateway_yaml() + """
services:
  - name: svc
    url: "{url:up}"
    routes:
      - name: plain
        paths: [/plain]
        plugins: [{name: jwt}]
      - name: realm
        paths: [/realm]
        plugins: [{name: jwt, config: {realm: test-jwt, cookie_names: [crumble]}}]
      - name: preflight
        paths: [/preflight]
        plugins: [{name: jwt, config: {run_on_preflight: false}}]
      - name: claims
        paths: [/claims]
        plugins: [{name: jwt, config: {claims_to_verify: [exp, nbf]}}]
      - name: maxexp
        paths: [/maxexp]
        plugins: [{name: jwt, config: {claims_to_verify: [exp], maximum_expiration: 100}}]
      - name: kid
        paths: [/kid]
        plugins: [{name: jwt, config: {key_claim_name: kid}}]
      - name: b64
        paths: [/b64]
        plugins: [{name: jwt, config: {secret_is_base64: true}}]
      - name: custom
        paths: [/custom]
        plugins: [{name: jwt, config: {header_names: [CustomAuthorization],
                                       uri_param_names: [jwt, token]}}]
      - name: both
        paths: [/both]
        plugins: [{name: jwt}, {name: key-auth}]
      - name: either
        paths: [/either]
        plugins: [{name: jwt, config: {anonymous: guest}},
                  {name: key-auth, config: {anonymous: guest}}]
consumers:
  - username: guest
  - username: hs
    keyauth_credentials: [{key: hs-api-key}]
    jwt_secrets:
      - {key: hs-iss, secret: s3cr3t}
      - {key: hs-kid, secret: k1d-secret}
      - {key: b64-iss, secret: "c2VjcmV0LWJ5dGVz"}
  - username: asym
    jwt_secrets:
      - key: rs-iss
        algorithm: RS256
        rsa_public_key: |
""" + indent(RSA_PUB, 10) + """      - key: ps-iss
        algorithm: PS256
        rsa_public_key: |
""" + indent(RSA_PUB, 10) + """      - key: es-iss
        algorithm: ES256
        rsa_public_key: |
""" + indent(EC_PUB, 10) + """      - key: ed-iss
        algorithm: EdDSA
        rsa_public_key: |
""" + indent(ED_PUB, 10)


def get(port, path, headers=None):
    st, hs, b = http_request(port, "GET", path, headers=headers)
    return st, hs, b


def body(b):
    return json.loads(b)


def bearer(t):
    return {"Authorization": "Bearer " + t}


with Gatehouse(CONFIG, {"up": up}) as gw:
    p = gw.proxy_port()
    now = int(time.time())
    good = token({"iss": "hs-iss"})

    st, hs, b = get(p, "/plain/x")
    r.check(st == 401 and body(b) == {"message": "Unauthorized"} and
            header(hs, "www-authenticate") == "Bearer", f"1 no token: {st} {b!r}")
    st, hs, b = get(p, "/plain/x", bearer(token({"sub": "x"})))
    r.check(st == 401 and body(b) == {"message": "No mandatory 'iss' in claims"} and
            header(hs, "www-authenticate") == 'Bearer error="invalid_token"', f"2 {b!r}")
    st, hs, b = get(p, "/plain/x", bearer(token({"iss": ""})))
    r.check(body(b) == {"message": "Invalid 'iss' in claims"}, f"3 {b!r}")
    st, hs, b = get(p, "/plain/x", bearer(token({"iss": "nobody"})))
    r.check(body(b) == {"message": "No credentials found for given 'iss'"}, f"4 {b!r}")
    st, hs, b = get(p, "/plain/x", bearer(token({"iss": "hs-iss"}, secret=b"wrong")))
    r.check(st == 401 and body(b) == {"message": "Invalid signature"}, f"5 {b!r}")
    st, hs, b = get(p, "/plain/x", bearer(token({"iss": "rs-iss"}, secret=b"x")))
    r.check(body(b) == {"message": "Invalid algorithm"}, f"6 HS256 for an RS256 key: {b!r}")
    st, hs, b = http_request(p, "OPTIONS", "/preflight/x")
    r.check(st == 200, f"7 OPTIONS with run_on_preflight false: {st}")
    st, hs, b = http_request(p, "OPTIONS", "/plain/x")
    r.check(st == 401 and b == b'{"message":"Unauthorized"}', f"8 {b!r}")
    st, hs, b = get(p, "/maxexp/x", bearer(token({"iss": "hs-iss", "exp": now + 1000})))
    r.check(st == 401 and b == b'{"exp":"exceeds maximum allowed expiration"}', f"9 {b!r}")
    st, hs, b = get(p, "/maxexp/x", bearer(token({"iss": "hs-iss", "exp": now + 50})))
    r.check(st == 200, "9b within maximum_expiration")
    st, hs, b = get(p, "/plain/x?jwt=" + token({"iss": "hs-iss", "a": 1}), bearer(good))
    r.check(st == 401 and body(b) == {"message": "Multiple tokens provided"}, f"10 {b!r}")
    st, hs, b = get(p, "/plain/x?jwt=" + good, bearer(good))
    r.check(st == 200, "10b the same token twice counts once")
    st, hs, b = get(p, "/plain/x", bearer(good))
    e = body(b)
    r.check(st == 200 and header(e["headers"], "x-consumer-username") == "hs" and
            header(e["headers"], "x-credential-identifier") == "hs-iss" and
            header(e["headers"], "authorization") == "Bearer " + good,
            f"11 valid HS256: {st}")
    st, hs, b = get(p, "/plain/x", {"Authorization": "bearer  " + good})
    r.check(st == 200, "11b 'bearer' in lower case")
    st, hs, b = get(p, "/plain/x", {"Authorization": "Basic " + good})
    r.check(st == 401 and body(b) == {"message": "Unauthorized"}, "11c not Bearer: no token")
    st, hs, b = get(p, "/kid/x", bearer(token({"sub": 1}, secret=b"k1d-secret",
                                              header_extra={"kid": "hs-kid"})))
    r.check(st == 200, f"12 key_claim_name kid, in the JOSE header: {st}")
    st, hs, b = get(p, "/b64/x", bearer(token({"iss": "b64-iss"}, secret=b"secret-bytes")))
    r.check(st == 200, f"13 secret_is_base64: {st}")
    st, hs, b = get(p, "/realm/x", {"Cookie": "a=1; crumble=" + good})
    r.check(st == 200, f"14 token in a cookie: {st}")
    st, hs, b = get(p, "/realm/x", {"Cookie": "crumble=" + good[:-30] + "garbage.!"})
    r.check(st == 401 and body(b) == {"message": "Bad token; invalid JSON"} and
            header(hs, "www-authenticate") == 'Bearer realm="test-jwt", error="invalid_token"',
            f"14b corrupted cookie: {b!r} {header(hs, 'www-authenticate')}")
    st, hs, b = get(p, "/realm/x")
    r.check(header(hs, "www-authenticate") == 'Bearer realm="test-jwt"', "14c realm")
    st, hs, b = http_request(p, "GET", "/custom/x", headers=[
        ("CustomAuthorization", "Bearer " + good), ("CustomAuthorization", "Bearer other")])
    r.check(st == 200, f"15 the first of a repeated custom header: {st}")
    for q in ("jwt", "token"):
        st, hs, b = get(p, f"/custom/x?{q}=" + good)
        r.check(st == 200, f"16 token in ?{q}=")
    for alg, iss in (("RS256", "rs-iss"), ("PS256", "ps-iss"), ("ES256", "es-iss"),
                     ("EdDSA", "ed-iss")):
        st, hs, b = get(p, "/plain/x", bearer(token({"iss": iss}, alg=alg)))
        r.check(st == 200 and header(body(b)["headers"], "x-consumer-username") == "asym",
                f"17 {alg}: {st} {b[:80]!r}")
    st, hs, b = get(p, "/plain/x", bearer(token({"iss": "rs-iss"}, alg="RS256")[:-4] + "AAAA"))
    r.check(st == 401 and body(b) == {"message": "Invalid signature"}, "17b RS256 tampered")
    st, hs, b = get(p, "/plain/x", bearer(token({"iss": "rs-iss"}, alg="PS256")))
    r.check(body(b) == {"message": "Invalid algorithm"}, "17c PS256 for an RS256 key")
    none_tok = b64(b'{"alg":"none"}') + "." + b64(b'{"iss":"hs-iss"}') + "."
    st, hs, b = get(p, "/plain/x", bearer(none_tok))
    r.check(st == 401 and body(b) == {"message": "Bad token; invalid alg"}, f"alg none: {b!r}")
    st, hs, b = get(p, "/claims/x", bearer(good))
    r.check(st == 401 and body(b) == {"nbf": "must be a number", "exp": "must be a number"},
            f"18 {b!r}")
    st, hs, b = get(p, "/claims/x", bearer(token({"iss": "hs-iss", "exp": now - 10,
                                                  "nbf": now - 100})))
    r.check(st == 401 and b == b'{"exp":"token expired"}', f"19 expired: {b!r}")
    st, hs, b = get(p, "/claims/x", bearer(token({"iss": "hs-iss", "exp": now + 100,
                                                  "nbf": now + 50})))
    r.check(st == 401 and b == b'{"nbf":"token not valid yet"}', f"20 {b!r}")
    st, hs, b = get(p, "/claims/x", bearer(token({"iss": "hs-iss", "exp": now + 100,
                                                  "nbf": now - 5})))
    r.check(st == 200, "20b valid exp and nbf")
    st, hs, b = get(p, "/both/x?apikey=hs-api-key")
    r.check(st == 401 and header(hs, "www-authenticate") == "Bearer",
            f"21 jwt AND key-auth: only a key: jwt's 401 ({st})")
    st, hs, b = get(p, "/both/x", bearer(good))
    r.check(st == 401 and header(hs, "www-authenticate") == "Key",
            f"21b only a token: key-auth's 401 ({st})")
    st, hs, b = get(p, "/both/x?apikey=hs-api-key", bearer(good))
    r.check(st == 200, "21c both: 200")
    st, hs, b = get(p, "/either/x?apikey=hs-api-key")
    r.check(st == 200 and header(body(b)["headers"], "x-consumer-username") == "hs" and
            header(body(b)["headers"], "x-anonymous-consumer") is None,
            "anonymous on both: OR, the key wins over the anonymous jwt")
    st, hs, b = get(p, "/either/x", bearer(good))
    r.check(st == 200 and header(body(b)["headers"], "x-anonymous-consumer") is None and
            header(body(b)["headers"], "x-credential-identifier") == "hs-iss",
            "anonymous on both: the token authenticates, key-auth stands aside")
    st, hs, b = get(p, "/either/x")
    r.check(st == 200 and header(body(b)["headers"], "x-anonymous-consumer") == "true",
            "anonymous on both: nothing given, the anonymous consumer")

    gw.wait_access_log(5)
    log = open(gw.access_log_path).read()
    r.check(good not in log, "tokens in the query string are redacted in the access log")

# a public key that does not parse is refused at load
bad = gateway_yaml() + """
consumers:
  - username: u
    jwt_secrets: [{key: k, algorithm: RS256, rsa_public_key: "-----BEGIN PUBLIC KEY-----x"}]
"""
code, err = harness.check_config(bad)
r.check(code == 1 and "jwt_secrets[0].rsa_public_key: invalid key" in err, f"invalid key: {err}")

r.finish()
