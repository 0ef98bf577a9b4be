"""cors through the real daemon: Kong's spec/03-plugins/13-cors/01-access_spec.lua cases
(restated in ../shared/reference/kong-behaviour.md §6.7) and its origin regex table.

Preflights are answered before authentication; CORS headers are added to every response of
the route, gatehouse's own 401/500/502 included; an upstream's Access-Control-Allow-Origin is
removed when the origin is not allowed; Vary: Origin is added next to the upstream's Vary.
"""
import json

import harness
from harness import Gatehouse, Results, gateway_yaml, header, http_request, start_echo

r = Results()
up = start_echo("up")

DEFAULT_METHODS = "GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT"

ROUTES = {
    "defaults": "{}",
    "empty": "{origins: []}",
    "star-cred": "{origins: ['*'], credentials: true}",
    "list-star": "{origins: [foo.bar, '*']}",
    "full": "{origins: [example.test], methods: [GET], headers: [origin, type, accepts], "
            "exposed_headers: [x-auth-token], max_age: 23, credentials: true}",
    "continue": "{preflight_continue: true}",
    "two-sites": "{origins: ['http://my-site.test', 'http://my-other-site.test']}",
    "private": "{private_network: true, origins: [allowed-domain.test]}",
    "full-nocred": "{origins: [example.test], methods: [GET], headers: [origin, type, accepts], "
                   "exposed_headers: [x-auth-token], max_age: 23}",
    "two-plain": "{origins: [example.test, example.org]}",
    "regex": "{origins: ['.*\\.?example(?:-foo)?.test']}",
    "vary": "{origins: [example.test]}",
    "ports": "{origins: ['http://my-site.test', 'https://my-other-site.test:9000']}",
    "star-nocred": "{origins: ['*'], credentials: false}",
    "upstream-acao": "{origins: [a.xxx.test, allowed-domain.test], credentials: true}",
    "absent-false": "{allow_origin_absent: false, origins: [foo.bar], credentials: true, "
                    "exposed_headers: [x-auth-token]}",
    "absent-true": "{allow_origin_absent: true, origins: [foo.bar], credentials: true, "
                   "exposed_headers: [x-auth-token]}",
    # the regex table
    "rx-single": "{origins: [foo.test]}",
    "rx-single-url": "{origins: ['https://bar.test:1234']}",
    "rx-foo": "{origins: ['foo\\.test']}",
    "rx-sub": "{origins: ['(.*[./])?foo\\.test']}",
    "rx-port": "{origins: ['(.*[./])?foo\\.test:8000']}",
    "rx-https-port": "{origins: ['https://(.*[.])?foo\\.test:8000']}",
    "rx-anchored": "{origins: ['^http://(.*[.])?foo\\.test(:(80|90))?$']}",
    "rx-multi-plain": "{origins: [foo.test, bar.test]}",
    "rx-multi-urls": "{origins: ['http://foo.test', 'https://bar.test:1234']}",
    "rx-mixed": "{origins: [bar.test, 'foo\\.test']}",
    "rx-mixed-sub": "{origins: [bar.test, '(.*\\.)?foo\\.test']}",
}

routes = ""
for name, conf in ROUTES.items():
    routes += (f"      - name: {name}\n        paths: [/{name}]\n"
               f"        plugins: [{{name: cors, config: {conf}}}]\n")

CONFIG = gateway_yaml() + """
services:
  - name: svc
    url: "{url:up}"
    routes:
""" + routes + """      - name: with-key
        paths: [/with-key]
        plugins: [{name: cors}, {name: key-auth}]
      - name: with-error
        paths: [/with-error]
        plugins:
          - {name: cors, config: {origins: [example.test], exposed_headers: [x-auth-token]}}
          - {name: key-auth, config: {anonymous: nobody}}
  - name: down
    url: http://127.0.0.1:9
    routes:
      - name: refused
        paths: [/refused]
        plugins:
          - {name: cors, config: {origins: [example.test], exposed_headers: [x-auth-token]}}
"""


def pre(port, path, origin="origin1.test", method="GET", extra=None):
    h = {"Origin": origin, "Access-Control-Request-Method": method}
    h.update(extra or {})
    return http_request(port, "OPTIONS", path, headers=h)


def all_values(hs, name):
    return [v for k, v in hs if k.lower() == name.lower()]


def cors_headers(hs):
    return {k.lower(): v for k, v in hs if k.lower().startswith("access-control-")}


with Gatehouse(CONFIG, {"up": up}) as gw:
    p = gw.proxy_port()
    H = header

    st, hs, b = pre(p, "/defaults")
    r.check(st == 200 and H(hs, "content-length") == "0" and b == b"" and
            H(hs, "access-control-allow-methods") == DEFAULT_METHODS and
            H(hs, "access-control-allow-origin") == "*" and
            all(H(hs, x) is None for x in ("access-control-allow-headers",
                                           "access-control-expose-headers",
                                           "access-control-allow-credentials",
                                           "access-control-max-age", "vary")),
            f"1 defaults preflight: {st} {cors_headers(hs)}")
    st, hs, b = pre(p, "/empty")
    r.check(st == 200 and H(hs, "access-control-allow-origin") == "*", "2 origins: []")
    st, hs, b = pre(p, "/star-cred", origin="origin5.test")
    r.check(H(hs, "access-control-allow-origin") == "origin5.test" and
            H(hs, "access-control-allow-credentials") == "true" and
            H(hs, "vary") == "Origin" and
            H(hs, "access-control-allow-methods") == DEFAULT_METHODS,
            f"3 * with credentials echoes the origin: {cors_headers(hs)}")
    st, hs, b = pre(p, "/list-star", origin="http://www.example.net")
    r.check(H(hs, "access-control-allow-origin") == "*" and
            H(hs, "access-control-allow-credentials") is None, f"4 * in a list: {cors_headers(hs)}")
    st, hs, b = pre(p, "/full", origin="origin5.test")
    r.check(H(hs, "access-control-allow-methods") == "GET" and
            H(hs, "access-control-allow-origin") == "example.test" and
            H(hs, "access-control-max-age") == "23" and
            H(hs, "access-control-allow-credentials") == "true" and
            H(hs, "access-control-allow-headers") == "origin,type,accepts" and
            H(hs, "vary") == "Origin" and H(hs, "access-control-expose-headers") is None,
            f"5 full config preflight: {cors_headers(hs)}")
    st, hs, b = http_request(p, "OPTIONS", "/continue/x", headers={"x-echo-status": "201"})
    r.check(st == 201, f"6 preflight_continue: the upstream answers ({st})")
    st, hs, b = pre(p, "/continue/x", extra={"x-echo-status": "201"})
    r.check(st == 201 and H(hs, "access-control-allow-origin") is None,
            f"6b a real preflight goes upstream, no CORS headers added ({st})")
    st, hs, b = pre(p, "/star-cred", extra={"Access-Control-Request-Headers": "origin,accepts"})
    r.check(H(hs, "access-control-allow-headers") == "origin,accepts",
            "7 requested headers echoed")
    st, hs, b = http_request(p, "OPTIONS", "/two-sites/x",
                             headers={"Origin": "http://my-site.test"})
    r.check(st == 200 and json.loads(b)["method"] == "OPTIONS" and
            H(hs, "access-control-allow-origin") == "http://my-site.test",
            f"8 OPTIONS without ACRM is proxied: {st}")
    for bad in ("http://bad-guys.test", "http://my-site.test.bad-guys.test"):
        st, hs, b = http_request(p, "GET", "/two-sites/x", headers={"Origin": bad})
        r.check(H(hs, "access-control-allow-origin") is None, f"9 {bad} not allowed")
    st, hs, b = pre(p, "/private", origin="allowed-domain.test", method="PUT",
                    extra={"Access-Control-Request-Private-Network": "true"})
    r.check(H(hs, "access-control-allow-private-network") == "true", "10 private network")
    st, hs, b = pre(p, "/private", origin="allowed-domain.test", method="PUT")
    r.check(H(hs, "access-control-allow-private-network") is None,
            "10b not without the request header")
    st, hs, b = http_request(p, "GET", "/defaults/x")
    r.check(st == 200 and H(hs, "access-control-allow-origin") == "*" and
            len(cors_headers(hs)) == 1 and H(hs, "vary") is None,
            f"11 GET without Origin: {cors_headers(hs)}")
    st, hs, b = http_request(p, "OPTIONS", "/defaults/anything")
    r.check(st == 200 and json.loads(b)["method"] == "OPTIONS" and
            H(hs, "access-control-allow-origin") == "*" and
            H(hs, "access-control-allow-methods") is None, "12 OPTIONS without ACRM proxied")
    st, hs, b = http_request(p, "GET", "/full/x")
    r.check(H(hs, "access-control-allow-origin") == "example.test" and
            H(hs, "access-control-expose-headers") == "x-auth-token" and
            H(hs, "access-control-allow-credentials") == "true" and H(hs, "vary") == "Origin" and
            all(H(hs, x) is None for x in ("access-control-allow-methods",
                                           "access-control-allow-headers",
                                           "access-control-max-age")),
            f"13 actual request: {cors_headers(hs)}")
    st, hs, b = http_request(p, "GET", "/refused/x")
    r.check(st == 502 and H(hs, "access-control-allow-origin") == "example.test" and
            H(hs, "access-control-expose-headers") == "x-auth-token" and
            H(hs, "vary") == "Origin", f"14 gatehouse's 502 has CORS headers: {st} {cors_headers(hs)}")
    st, hs, b = http_request(p, "GET", "/with-error/x")
    r.check(st == 500 and H(hs, "access-control-allow-origin") == "example.test" and
            H(hs, "access-control-expose-headers") == "x-auth-token",
            f"15 a 500 from a later plugin has CORS headers: {st} {cors_headers(hs)}")
    st, hs, b = http_request(p, "GET", "/defaults/asdasdasd", headers={"x-echo-status": "404"})
    r.check(st == 404 and H(hs, "access-control-allow-origin") == "*", "16 upstream 404")
    st, hs, b = http_request(p, "GET", "/with-key/x")
    r.check(st == 401 and H(hs, "access-control-allow-origin") == "*" and
            H(hs, "www-authenticate") == "Key", f"17 key-auth's 401 has CORS headers: {st}")
    st, hs, b = pre(p, "/with-key/x")
    r.check(st == 200 and H(hs, "access-control-allow-origin") == "*",
            f"17b the preflight is answered before key-auth: {st}")
    st, hs, b = http_request(p, "GET", "/two-plain/x", headers={"Origin": "example.test"})
    r.check(H(hs, "access-control-allow-origin") == "example.test" and H(hs, "vary") == "Origin",
            "18 plain entries")
    for o in ("http://example.test", "https://example.test"):
        st, hs, b = http_request(p, "GET", "/two-plain/x", headers={"Origin": o})
        r.check(H(hs, "access-control-allow-origin") is None, f"19 {o} is not example.test")
    for o, ok in (("example.test", True), ("www.example.test", True), ("example-foo.test", True),
                  ("www.example-foo.test", True), ("www.example-fo0.test", False)):
        st, hs, b = http_request(p, "GET", "/regex/x", headers={"Origin": o})
        r.check(H(hs, "access-control-allow-origin") == (o if ok else None) and
                H(hs, "vary") == "Origin", f"20 regex, {o}: {cors_headers(hs)}")
    st, hs, b = http_request(p, "GET", "/vary/x", headers={"Origin": "example.test",
                                                          "x-echo-set": "Vary: Accept-Encoding"})
    r.check(set(all_values(hs, "vary")) == {"Accept-Encoding", "Origin"},
            f"21 Vary keeps the upstream's: {all_values(hs, 'vary')}")
    for o, want in (("http://my-site.test", "http://my-site.test"),
                    ("http://my-site.test:80", "http://my-site.test"),
                    ("http://my-site.test:8000", None), ("https://my-site.test", None),
                    ("https://my-other-site.test:9000", "https://my-other-site.test:9000"),
                    ("https://my-other-site.test:9001", None)):
        st, hs, b = http_request(p, "GET", "/ports/x", headers={"Origin": o})
        r.check(H(hs, "access-control-allow-origin") == want, f"22 {o} -> {want}")
    st, hs, b = http_request(p, "GET", "/star-cred/x", headers={"Origin": "http://www.example.net:3000"})
    r.check(H(hs, "access-control-allow-origin") == "http://www.example.net:3000" and
            H(hs, "access-control-allow-credentials") == "true" and H(hs, "vary") == "Origin",
            "23 * with credentials on an actual request")
    st, hs, b = http_request(p, "GET", "/star-nocred/x", headers={"Origin": "http://www.example.net"})
    r.check(H(hs, "access-control-allow-origin") == "*" and
            H(hs, "access-control-allow-credentials") is None and H(hs, "vary") is None, "24")
    st, hs, b = http_request(p, "GET", "/upstream-acao/x",
                             headers={"Origin": "allowed-domain.test",
                                      "x-echo-set": "Access-Control-Allow-Origin: *"})
    r.check(all_values(hs, "access-control-allow-origin") == ["allowed-domain.test"] and
            H(hs, "access-control-allow-credentials") == "true" and
            header(json.loads(b)["headers"], "origin") == "allowed-domain.test",
            f"25 allowed: ours replaces the upstream's: {all_values(hs, 'access-control-allow-origin')}")
    st, hs, b = http_request(p, "GET", "/upstream-acao/x",
                             headers={"Origin": "disallowed-domain.test",
                                      "x-echo-set": "Access-Control-Allow-Origin: *"})
    r.check(all_values(hs, "access-control-allow-origin") == [] and
            H(hs, "access-control-allow-credentials") == "true",
            f"25b disallowed: the upstream's ACAO is removed: {cors_headers(hs)}")
    for hdrs in ({}, {"Origin": ""}):
        st, hs, b = http_request(p, "GET", "/absent-false/x", headers=hdrs)
        r.check(not cors_headers(hs), f"26 allow_origin_absent false, {hdrs}: {cors_headers(hs)}")
        st, hs, b = http_request(p, "GET", "/absent-true/x", headers=hdrs)
        r.check(H(hs, "access-control-allow-origin") == "foo.bar" and
                H(hs, "access-control-allow-credentials") == "true" and
                H(hs, "access-control-expose-headers") == "x-auth-token",
                f"27 allow_origin_absent true, {hdrs}")

    # the regex table (preflights)
    TABLE = {
        "rx-single": (["http://any.test", "http://evil.test"], [], "foo.test"),
        "rx-single-url": (["http://any.test"], [], "https://bar.test:1234"),
        "rx-foo": (["http://foo.test", "http://foo.test:8000", "https://foo.test:8000",
                    "http://foo.test:90", "http://foo.test:80"],
                   ["http://evil.test", "http://foo.test.evil.test", "http://something.foo.test",
                    "http://evilfoo.test", "http://foobtest", "https://bar.test:1234"], None),
        "rx-sub": (["http://foo.test", "http://something.foo.test", "http://foo.test:8000"],
                   ["http://evil.test", "http://foo.test.evil.test", "http://evilfoo.test",
                    "http://foobtest"], None),
        "rx-port": (["http://foo.test:8000", "https://foo.test:8000"],
                    ["http://foo.test", "http://foo.test:90"], None),
        "rx-https-port": (["https://foo.test:8000"], ["http://foo.test:8000", "https://foo.test"],
                          None),
        "rx-anchored": (["http://foo.test", "http://something.foo.test", "http://foo.test:90",
                         "http://foo.test:80"], ["http://foo.test:8000", "https://foo.test"], None),
        "rx-multi-plain": (["foo.test"], ["http://foo.test", "http://bar.test"], None),
        "rx-multi-urls": (["http://foo.test", "http://foo.test:80", "https://bar.test:1234"],
                          ["http://foo.test:8000", "http://foo.test:90"], None),
        "rx-mixed": (["http://foo.test", "https://foo.test:1234"],
                     ["http://something.foo.test", "http://evil.test"], None),
        "rx-mixed-sub": (["http://foo.test", "http://a.foo.test:99"],
                         ["http://evil.test", "http://foobtest"], None),
    }
    for route, (accepted, rejected, fixed) in TABLE.items():
        for o in accepted:
            st, hs, b = pre(p, f"/{route}", origin=o)
            want = fixed if fixed else (o[:-3] if o.endswith(":80") else o)
            r.check(H(hs, "access-control-allow-origin") == want,
                    f"regex table {route}: {o} accepted as {want} "
                    f"({H(hs, 'access-control-allow-origin')})")
        for o in rejected:
            st, hs, b = pre(p, f"/{route}", origin=o)
            r.check(H(hs, "access-control-allow-origin") is None,
                    f"regex table {route}: {o} rejected")

# configuration errors name the field
bad = gateway_yaml() + """
services:
  - name: s
    url: http://127.0.0.1:9
    routes:
      - name: r
        paths: [/]
        plugins:
          - {name: cors, config: {origins: ['(unclosed'], methods: [FETCH], max_age: soon}}
"""
code, err = harness.check_config(bad)
r.check(code == 1 and "origins[0]: '(unclosed' is not a valid regex" in err and
        "methods[0]: expected one of: GET" in err and "max_age: expected a number" in err,
        f"invalid cors config: {err}")

r.finish()
