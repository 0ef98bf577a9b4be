"""key-auth and acl through the real daemon, and the plugin chain's scoping rules.

Cases restate Kong's spec/03-plugins/09-key-auth/02-access_spec.lua and
spec/03-plugins/18-acl/02-access_spec.lua (../shared/reference/kong-behaviour.md §3), plus:
the X-Consumer-* headers a client sends never reach an upstream; consumer-scoped plugin
instances apply once the consumer is known; a disabled instance lets a less specific one apply;
credentials with a ttl expire and a reload does not restart them; keys from a vault reference.
"""
import hashlib
import json
import time

from harness import Gatehouse, Results, gateway_yaml, header, http_request, start_echo

r = Results()
up = start_echo("up")

CONFIG = gateway_yaml(workers=2, extra="  limits: {plugin_body_buffer: 4k}\n") + """
services:
  - name: svc
    url: "{url:up}"
    routes:
      - {name: plain, paths: [/plain]}
      - name: auth
        paths: [/auth]
        plugins: [{name: key-auth}]
      - name: realm
        paths: [/realm]
        plugins: [{name: key-auth, config: {realm: test-realm}}]
      - name: hide
        paths: [/hide]
        plugins: [{name: key-auth, config: {hide_credentials: true}}]
      - name: preflight
        paths: [/preflight]
        plugins: [{name: key-auth, config: {run_on_preflight: false}}]
      - name: names
        paths: [/names]
        plugins: [{name: key-auth, config: {key_names: [api_key, second]}}]
      - name: header-only
        paths: [/header-only]
        plugins: [{name: key-auth, config: {key_in_query: false}}]
      - name: query-only
        paths: [/query-only]
        plugins: [{name: key-auth, config: {key_in_header: false}}]
      - name: anon
        paths: [/anon]
        plugins: [{name: key-auth, config: {anonymous: guest}}]
      - name: anon-id
        paths: [/anon-id]
        plugins: [{name: key-auth, config: {anonymous: 11111111-2222-4333-8444-555555555555}}]
      - name: anon-missing
        paths: [/anon-missing]
        plugins: [{name: key-auth, config: {anonymous: nobody}}]
      - name: allow-gold
        paths: [/gold]
        plugins:
          - {name: key-auth}
          - {name: acl, config: {allow: [gold]}}
      - name: deny-gold
        paths: [/not-gold]
        plugins:
          - {name: key-auth}
          - {name: acl, config: {deny: [gold]}}
      - name: allow-hidden
        paths: [/gold-hidden]
        plugins:
          - {name: key-auth}
          - {name: acl, config: {allow: [gold], hide_groups_header: true}}
      - name: anon-acl
        paths: [/anon-acl]
        plugins:
          - {name: key-auth, config: {anonymous: guest}}
          - {name: acl, config: {allow: [gold, silver]}}
      - name: acl-only
        paths: [/acl-only]
        plugins: [{name: acl, config: {allow: [gold]}}]
      - name: disabled
        paths: [/disabled]
        plugins: [{name: key-auth, enabled: false}]
      - name: expiring
        paths: [/expiring]
        plugins: [{name: key-auth}]
      - name: body
        paths: [/body]
        plugins: [{name: key-auth, config: {key_in_body: true}}]
      - name: body-hide
        paths: [/body-hide]
        plugins: [{name: key-auth, config: {key_in_body: true, hide_credentials: true}}]
  - name: svc2
    url: "{url:up}"
    plugins: [{name: key-auth, config: {key_names: [svckey]}}]
    routes:
      - {name: inherits, paths: [/inherits]}
      - name: overrides
        paths: [/overrides]
        plugins: [{name: key-auth, config: {key_names: [routekey]}}]
      - name: route-disabled
        paths: [/route-disabled]
        plugins: [{name: key-auth, enabled: false, config: {key_names: [routekey]}}]
consumers:
  - username: bob
    custom_id: bob-0001
    keyauth_credentials:
      - {id: 5f0d5b1c-6f6e-4a8f-9a0e-6b1c2d3e4f50, key: kong}
      - key: "{vault://env/GW_AUTH_TEST_KEY}"
    acls: [{group: gold}, {group: admin}]
  - username: carol
    keyauth_credentials: [{key: carol-key}]
    acls: [{group: silver}]
  - username: dave
    keyauth_credentials: [{key: dave-key}]
  - username: erin
    keyauth_credentials: [{key: erin-key, ttl: 3}]
  - username: guest
  - id: 11111111-2222-4333-8444-555555555555
    username: guest-by-id
"""
ENV = {"GW_AUTH_TEST_KEY": "from-the-vault"}


def req(port, method, path, headers=None, body=None):
    st, hs, b = http_request(port, method, path, headers=headers, body=body)
    return st, hs, b


def echoed(body):
    """The request as the echo upstream saw it."""
    return json.loads(body)


def up_header(body, name):
    return header(echoed(body)["headers"], name)


def message(body):
    try:
        return json.loads(body).get("message")
    except ValueError:
        return None


with Gatehouse(CONFIG, {"up": up}, env=ENV) as gw:
    port = gw.proxy_port()

    # ---- key-auth: Kong's access spec ---------------------------------------------------
    st, hs, b = req(port, "GET", "/auth/request?apikey=kong")
    r.check(st == 200, f"1 valid key in the query: {st}")
    r.check(up_header(b, "x-consumer-username") == "bob" and
            up_header(b, "x-credential-identifier") == "5f0d5b1c-6f6e-4a8f-9a0e-6b1c2d3e4f50" and
            up_header(b, "x-consumer-custom-id") == "bob-0001" and
            up_header(b, "x-consumer-id") is not None and
            up_header(b, "x-anonymous-consumer") is None,
            f"1 upstream sees the consumer: {echoed(b)['headers'] if st == 200 else b}")
    st, hs, b = req(port, "GET", "/auth/request", headers={"apikey": "kong"})
    r.check(st == 200 and up_header(b, "x-consumer-username") == "bob", f"1b key in a header: {st}")
    st, hs, b = req(port, "GET", "/auth/status/200")
    r.check(st == 401 and message(b) == "No API key found in request" and
            header(hs, "www-authenticate") == "Key", f"2 no key: {st} {b!r} {hs}")
    st, hs, b = req(port, "GET", "/auth/x", headers={"apikey": ""})
    r.check(st == 401 and message(b) == "No API key found in request", f"3 empty key: {st} {b!r}")
    st, hs, b = req(port, "GET", "/auth/x?apikey=")
    r.check(st == 401 and message(b) == "No API key found in request",
            f"3b empty key in the query: {st}")
    st, hs, b = req(port, "GET", "/auth/x?apikey=123")
    r.check(st == 401 and message(b) == "Unauthorized" and header(hs, "www-authenticate") == "Key",
            f"4 unknown key: {st} {b!r}")
    st, hs, b = req(port, "GET", "/auth/x?apikey=kong&apikey=kong")
    r.check(st == 401 and message(b) == "Duplicate API key found", f"5 duplicate: {st} {b!r}")
    st, hs, b = req(port, "GET", "/auth/x", headers=[("apikey", "kong"), ("apikey", "kong")])
    r.check(st == 401 and message(b) == "Duplicate API key found",
            f"5b duplicate header: {st} {b!r}")
    st, hs, b = req(port, "OPTIONS", "/preflight/x")
    r.check(st == 200 and up_header(b, "x-consumer-id") is None,
            f"6 OPTIONS with run_on_preflight false is proxied: {st}")
    st, hs, b = req(port, "GET", "/preflight/x")
    r.check(st == 401, f"6b other methods still need a key: {st}")
    st, hs, b = req(port, "OPTIONS", "/auth/x")
    r.check(st == 401 and message(b) == "No API key found in request",
            f"7 OPTIONS with run_on_preflight true needs a key: {st}")
    st, hs, b = req(port, "GET", "/realm/x")
    r.check(st == 401 and header(hs, "www-authenticate") == 'Key realm="test-realm"',
            f"8 realm: {hs}")
    st, hs, b = req(port, "GET", "/hide/request?c=value1&b=value2&apikey=kong&a=value3")
    r.check(st == 200 and echoed(b)["target"].endswith("?c=value1&b=value2&a=value3"),
            f"9 hide_credentials removes the key from the query, order kept: {echoed(b)['path'] if st == 200 else st}")
    st, hs, b = req(port, "GET", "/hide/request?c=va%20lue1&apikey=kong&a=%2F")
    r.check(st == 200 and echoed(b)["target"].endswith("?c=va%20lue1&a=%2F"),
            f"9b encoded arguments kept as written: {echoed(b)['path'] if st == 200 else st}")
    st, hs, b = req(port, "GET", "/hide/request", headers={"apikey": "kong", "x-other": "1"})
    r.check(st == 200 and up_header(b, "apikey") is None and up_header(b, "x-other") == "1",
            "9c hide_credentials removes the header")
    st, hs, b = req(port, "GET", "/auth/request?c=value1&b=value2&apikey=kong&a=value3")
    r.check(st == 200 and echoed(b)["target"].endswith("?c=value1&b=value2&apikey=kong&a=value3"),
            "10 without hide_credentials the key reaches the upstream")
    st, hs, b = req(port, "GET", "/auth/request", headers={"apikey": "kong"})
    r.check(up_header(b, "apikey") == "kong", "10b ... in a header too")
    st, hs, b = req(port, "GET", "/anon/x")
    r.check(st == 200 and up_header(b, "x-anonymous-consumer") == "true" and
            up_header(b, "x-consumer-username") == "guest" and
            up_header(b, "x-credential-identifier") is None,
            f"12 anonymous by username: {st}")
    st, hs, b = req(port, "GET", "/anon-id/x")
    r.check(st == 200 and up_header(b, "x-consumer-id") == "11111111-2222-4333-8444-555555555555"
            and up_header(b, "x-consumer-username") == "guest-by-id", "12b anonymous by id")
    st, hs, b = req(port, "GET", "/anon/x?apikey=kong")
    r.check(st == 200 and up_header(b, "x-consumer-username") == "bob" and
            up_header(b, "x-anonymous-consumer") is None, "12c a good key wins over anonymous")
    st, hs, b = req(port, "GET", "/anon/x?apikey=wrong")
    r.check(st == 200 and up_header(b, "x-anonymous-consumer") == "true",
            "12d a bad key falls back to anonymous")
    st, hs, b = req(port, "GET", "/anon-missing/x")
    r.check(st == 500 and message(b) ==
            "anonymous consumer nobody is configured but doesn't exist", f"13 {st} {b!r}")
    for name in ("api_key", "api-key"):
        st, hs, b = req(port, "GET", "/names/x", headers={name: "kong"})
        r.check(st == 200, f"14 key_names [api_key] matches header {name}: {st}")
    st, hs, b = req(port, "GET", "/names/x?second=carol-key")
    r.check(st == 200 and up_header(b, "x-consumer-username") == "carol",
            "the second of key_names")
    st, hs, b = req(port, "GET", "/header-only/x?apikey=kong")
    r.check(st == 401, f"key_in_query false: the query is not searched ({st})")
    st, hs, b = req(port, "GET", "/query-only/x", headers={"apikey": "kong"})
    r.check(st == 401, f"key_in_header false: headers are not searched ({st})")
    st, hs, b = req(port, "GET", "/auth/x?apikey=from-the-vault")
    r.check(st == 200 and up_header(b, "x-consumer-username") == "bob",
            "a key given as a vault reference")
    st, hs, b = req(port, "GET", "/auth/x?apikey=%7Bvault%3A%2F%2Fenv%2FGW_AUTH_TEST_KEY%7D")
    r.check(st == 401, "the reference text itself is not a key")
    st, hs, b = req(port, "GET", "/auth/x?apikey=KONG")
    r.check(st == 401, "keys are case-sensitive")
    st, hs, b = req(port, "GET", "/auth/x?apikey=kong", headers={"accept": "text/html"})
    r.check(st == 200, "Accept does not matter to a success")
    st, hs, b = req(port, "GET", "/auth/x", headers={"accept": "text/plain"})
    r.check(st == 401 and b"No API key found in request" in b and
            header(hs, "content-type", "").startswith("text/plain"),
            f"the 401 body follows Accept: {header(hs, 'content-type')}")

    # ---- key_in_body: form, JSON and multipart bodies ---------------------------------------
    def sha(data):
        return hashlib.sha256(data).hexdigest()

    FORM = {"content-type": "application/x-www-form-urlencoded"}
    JSON_CT = {"content-type": "application/json"}
    st, hs, b = req(port, "POST", "/body/x", headers=FORM, body=b"apikey=kong&other=1")
    r.check(st == 200 and up_header(b, "x-consumer-username") == "bob" and
            echoed(b)["body_sha256"] == sha(b"apikey=kong&other=1"),
            f"11 key in a form body, forwarded as sent: {st}")
    st, hs, b = req(port, "POST", "/body-hide/x", headers=FORM, body=b"a=1&apikey=kong&b=%2F")
    r.check(st == 200 and echoed(b)["body_sha256"] == sha(b"a=1&b=%2F") and
            echoed(b)["body_length"] == len(b"a=1&b=%2F") and
            up_header(b, "content-type") == "application/x-www-form-urlencoded",
            f"11 hide_credentials: the form body without the key: {st}")
    st, hs, b = req(port, "POST", "/body-hide/x", headers=JSON_CT,
                    body=b'{"apikey":"kong","other":1,"list":[1,2]}')
    r.check(st == 200 and echoed(b)["body_sha256"] == sha(b'{"other":1,"list":[1,2]}'),
            f"11 JSON body without the key: {st}")
    mp = (b"--XyZ\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nvalue\r\n"
          b"--XyZ\r\nContent-Disposition: form-data; name=\"apikey\"\r\n\r\nkong\r\n"
          b"--XyZ--\r\n")
    mp_kept = (b"--XyZ\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nvalue\r\n"
               b"--XyZ--\r\n")
    st, hs, b = req(port, "POST", "/body-hide/x",
                    headers={"content-type": "multipart/form-data; boundary=XyZ"}, body=mp)
    r.check(st == 200 and echoed(b)["body_sha256"] == sha(mp_kept) and
            up_header(b, "x-consumer-username") == "bob",
            f"11 multipart body without the key part: {st}")
    st, hs, b = req(port, "POST", "/body/x", headers={"content-type": "text/plain"},
                    body=b"apikey=kong")
    r.check(st == 401 and message(b) == "No API key found in request",
            f"an unsupported content type has no key: {st}")
    st, hs, b = req(port, "POST", "/body/x", headers=FORM, body=b"apikey[]=kong&apikey[1]=kong")
    r.check(st == 401 and message(b) == "No API key found in request",
            f"apikey[] is not an api key: {st}")
    st, hs, b = req(port, "POST", "/body/x", headers=JSON_CT, body=b'{"apikey":["kong","x"]}')
    r.check(st == 401 and message(b) == "Duplicate API key found", f"a JSON list: {st}")
    st, hs, b = req(port, "POST", "/body/x", headers=JSON_CT, body=b'{"apikey": not json')
    r.check(st == 401 and message(b) == "No API key found in request",
            f"a body that does not parse has no key: {st}")
    st, hs, b = req(port, "POST", "/body/x?apikey=kong", headers=FORM, body=b"x=1")
    r.check(st == 200 and echoed(b)["body_sha256"] == sha(b"x=1"),
            "the query is searched before the body")
    big = b"apikey=kong&pad=" + b"x" * 5000
    st, hs, b = req(port, "POST", "/body/x", headers=FORM, body=big)
    r.check(st == 413, f"a body over plugin_body_buffer: 413 ({st})")
    st, hs, b = req(port, "POST", "/auth/x?apikey=kong", headers=FORM, body=big)
    r.check(st == 200 and echoed(b)["body_length"] == len(big),
            "without key_in_body the body streams, whatever its size")

    def chunks():
        yield b"apikey=ko"
        yield b"ng&z=9"
    st, hs, b = req(port, "POST", "/body-hide/x", headers=FORM, body=chunks())
    r.check(st == 200 and echoed(b)["body_sha256"] == sha(b"z=9") and
            not echoed(b)["body_chunked"], f"a chunked body is read whole and sent with a length: {st}")

    # ---- the client's X-Consumer-* never reach an upstream ----------------------------------
    forged = {"x-consumer-id": "forged", "x-consumer-username": "admin",
              "x-credential-identifier": "forged", "x-anonymous-consumer": "false",
              "x-consumer-groups": "admin", "x-consumer-custom-id": "forged"}
    st, hs, b = req(port, "GET", "/plain/x", headers=forged)
    seen = {k: up_header(b, k) for k in forged} if st == 200 else {}
    r.check(st == 200 and all(v is None for v in seen.values()),
            f"forged consumer headers are removed on a route without plugins: {seen}")
    st, hs, b = req(port, "GET", "/auth/x?apikey=carol-key", headers=forged)
    r.check(st == 200 and up_header(b, "x-consumer-username") == "carol" and
            up_header(b, "x-consumer-groups") is None and
            up_header(b, "x-credential-identifier") != "forged",
            "... and replaced by the real ones after key-auth")

    # ---- acl ----------------------------------------------------------------------------
    st, hs, b = req(port, "GET", "/gold/x?apikey=kong")
    r.check(st == 200 and up_header(b, "x-consumer-groups") == "gold, admin",
            f"acl allow: a member passes with X-Consumer-Groups ({st})")
    st, hs, b = req(port, "GET", "/gold/x?apikey=carol-key")
    r.check(st == 403 and message(b) == "You cannot consume this service",
            f"acl allow: a non-member gets 403 ({st} {b!r})")
    st, hs, b = req(port, "GET", "/gold/x?apikey=dave-key")
    r.check(st == 403 and message(b) == "You cannot consume this service",
            f"acl allow: a consumer without groups gets 403 ({st})")
    st, hs, b = req(port, "GET", "/gold/x")
    r.check(st == 401 and message(b) == "No API key found in request",
            "acl runs after key-auth: no key is key-auth's 401")
    st, hs, b = req(port, "GET", "/not-gold/x?apikey=kong")
    r.check(st == 403 and message(b) == "You cannot consume this service", f"acl deny: member {st}")
    st, hs, b = req(port, "GET", "/not-gold/x?apikey=carol-key")
    r.check(st == 200 and up_header(b, "x-consumer-groups") == "silver",
            "acl deny: a non-member passes")
    st, hs, b = req(port, "GET", "/not-gold/x?apikey=dave-key")
    r.check(st == 200 and up_header(b, "x-consumer-groups") == "",
            f"acl deny: a consumer without groups passes, empty groups header ({st})")
    st, hs, b = req(port, "GET", "/gold-hidden/x?apikey=kong")
    r.check(st == 200 and up_header(b, "x-consumer-groups") is None,
            "hide_groups_header: no X-Consumer-Groups")
    st, hs, b = req(port, "GET", "/anon-acl/x")
    r.check(st == 401 and message(b) == "Unauthorized",
            f"acl with the anonymous consumer (no groups): 401 ({st} {b!r})")
    st, hs, b = req(port, "GET", "/anon-acl/x?apikey=carol-key")
    r.check(st == 200 and up_header(b, "x-consumer-groups") == "silver",
            "acl with anonymous: a member with a key passes")
    st, hs, b = req(port, "GET", "/acl-only/x")
    r.check(st == 401 and message(b) == "Unauthorized", f"acl without a consumer: 401 ({st})")

    # ---- scoping --------------------------------------------------------------------------
    st, hs, b = req(port, "GET", "/disabled/x")
    r.check(st == 200, f"a disabled instance does not run ({st})")
    st, hs, b = req(port, "GET", "/inherits/x?svckey=kong")
    r.check(st == 200, f"a service's plugin applies to its routes ({st})")
    st, hs, b = req(port, "GET", "/inherits/x?apikey=kong")
    r.check(st == 401, f"... with the service's config ({st})")
    st, hs, b = req(port, "GET", "/overrides/x?routekey=kong")
    r.check(st == 200, f"a route's instance wins over its service's ({st})")
    st, hs, b = req(port, "GET", "/overrides/x?svckey=kong")
    r.check(st == 401, f"... entirely ({st})")
    st, hs, b = req(port, "GET", "/route-disabled/x?svckey=kong")
    r.check(st == 200, f"a disabled route instance lets the service's apply ({st})")
    st, hs, b = req(port, "GET", "/route-disabled/x?routekey=kong")
    r.check(st == 401, f"... and not the disabled config ({st})")

    # ---- ttl: counted from the first load, not restarted by a reload ---------------------
    t_load = time.monotonic()
    st, hs, b = req(port, "GET", "/expiring/x?apikey=erin-key")
    r.check(st == 200, f"a credential with a ttl works before it expires ({st})")
    res = gw.reload()
    r.check(res == "succeeded", f"reload ({res})")
    while time.monotonic() - t_load < 3.5:
        time.sleep(0.1)
    st, hs, b = req(port, "GET", "/expiring/x?apikey=erin-key")
    r.check(st == 401 and message(b) == "Unauthorized",
            f"after its ttl the key is refused, the reload did not restart it ({st})")
    st, hs, b = req(port, "GET", "/expiring/x?apikey=kong")
    r.check(st == 200, "other keys still work")

    # the access log never shows a key, whatever key_names call it
    gw.wait_access_log(10)
    log = open(gw.access_log_path).read()
    leaked = [k for k in ("=kong", "carol-key", "erin-key", "from-the-vault") if k in log]
    r.check(not leaked and "svckey=REDACTED" in log and "second=REDACTED" in log,
            f"key values are redacted in the access log: {leaked}")

r.finish()
