"""request-transformer and request-transformer-advanced through the real daemon: Kong's
spec/03-plugins/36-request-transformer/02-access_spec.lua cases (restated in
../shared/reference/kong-behaviour.md §7.8), consumer-scoped instances, and config errors;
then response-transformer: headers, and JSON bodies rewritten whole through body_filter.
"""
import hashlib
import json

import harness
from harness import Gatehouse, Results, gateway_yaml, header, http_request, start_echo

r = Results()
up = start_echo("up")


def route(name, conf, paths=None, extra=""):
    p = paths or [f"/{name}"]
    return (f"      - name: {name}\n        paths: {json.dumps(p)}\n{extra}"
            f"        plugins: [{{name: request-transformer, config: {conf}}}]\n")


ROUTES = "".join([
    route("add", "{add: {headers: ['h1:v1', 'h2:value:2'], querystring: ['q1:v1'], "
                 "body: ['p1:v1']}}"),
    route("append", "{append: {headers: ['h1:v1', 'h1:v2', 'h2:v1'], querystring: ['q1:v1'], "
                    "body: ['p1:v1']}}"),
    route("hash", "{append: {headers: ['h1:#value_with_hash']}}"),
    route("remove", "{remove: {headers: [x-to-remove], querystring: [q1], "
                    "body: [toremoveform]}}"),
    route("rename", "{rename: {headers: ['x-to-rename:x-is-renamed'], querystring: ['q1:q2'], "
                    "body: ['old:new']}}"),
    route("rename-case", "{rename: {headers: ['rename:Rename']}}"),
    route("replace", "{replace: {headers: ['h1:v1'], querystring: ['q1:new'], "
                     "body: ['p1:replaced']}}"),
    route("to-post", "{http_method: POST}"),
    route("to-get", "{http_method: GET}"),
    route("make-json", "{http_method: POST, add: {headers: ['Content-Type:application/json'], "
                       "body: ['body:somecontent']}}"),
    route("captures", "{add: {querystring: ['uri_param1:$(uri_captures.user1)', "
                      "'uri_param2[some_index][1]:$(uri_captures.user2)']}}",
          paths=[r"~/requests/user1/(?P<user1>\w+)/user2/(?P<user2>\S+)"],
          extra="        strip_path: false\n"),
    route("uri", "{replace: {uri: '/requests/user2/$(uri_captures.user2)/user1/"
                 "$(uri_captures.user1)'}}",
          paths=[r"~/uri/user1/(?P<user1>\w+)/user2/(?P<user2>\S+)"]),
    route("fallback", "{add: {querystring: [\"uri_param1:$(uri_captures.user1 or 'default1')\", "
                      "\"uri_param2:$(uri_captures[\\\"user2\\\"] or 'default2')\"]}}"),
    route("whole", "{replace: {uri: '/requests$(uri_captures[0])'}}",
          paths=[r"~/user1/(?P<user1>\w+)/user2/(?P<user2>\S+)"]),
    route("mixed", "{add: {querystring: ['uri_param1:$(uri_captures.user1)', "
                   "'uri_param2:$(headers.host)'], headers: ['x-test-header:$(query_params.q1)']},"
                   " remove: {querystring: [q1]}}",
          paths=[r"~/mixed/(?P<user1>\w+)"]),
    route("removed-tpl", "{remove: {headers: [x-remove-header]}, add: {headers: "
                         "[\"x-test-header:$(headers['x-remove-header'])\"]}, replace: "
                         "{querystring: [\"q2:$(headers['x-remove-header'])\"]}}"),
    route("replaced-tpl", "{replace: {headers: ['x-replace-header:the new value']}, add: "
                          "{headers: [\"x-test-header:$(headers['x-replace-header'])\"]}}"),
    route("escape", "{add: {querystring: [\"q1:$('$(uri_captures.user1)')\"]}}"),
    route("shared", "{add: {querystring: [\"shared_param1:$(shared.my_version or 'none')\"]}}"),
    route("authz", "{remove: {headers: [Authorization]}, add: {headers: "
                   "['Authorization:Basic test']}}"),
    route("host", "{add: {headers: ['host:mark']}}", extra="        preserve_host: true\n"),
    route("host-replace", "{replace: {headers: ['host:replaced.test']}}"),
    route("subpath", "{replace: {uri: '/api/v2/$(uri_captures[\"subpath\"])'}}",
          paths=[r"~/(gw/)?api/(?<subpath>htest)$"]),
])

CONFIG = gateway_yaml() + """
services:
  - name: svc
    url: "{url:up}"
    routes:
""" + ROUTES + """      - name: advanced
        paths: [/advanced]
        plugins:
          - name: request-transformer-advanced
            config:
              allow: {body: [keep, p1]}
              add: {body: ['p1:12', 'flag:true'], json_types: [number, boolean]}
      - name: nested
        paths: [/nested]
        plugins:
          - name: request-transformer-advanced
            config:
              dots_in_keys: false
              remove: {body: ['items[*].secret']}
              rename: {body: ['customer.old:new']}
              replace: {body: ['items[2].name:second']}
              add: {body: ['customer.info.phone:555', 'meta.added:yes']}
      - name: rsp
        paths: [/rsp]
        plugins:
          - name: response-transformer
            config:
              remove: {headers: [x-remove-me], json: [remote_addr]}
              rename: {headers: ['x-old:x-new'], json: ['method:verb']}
              replace: {headers: ['x-rep:new'], json: ['server:replaced', 'nope:x']}
              add: {headers: ['x-added:yes'], json: ['added:5', 'flag:true'],
                    json_types: [number, boolean]}
              append: {headers: ['x-app:two'], json: ['list:v']}
      - name: rsp-headers
        paths: [/rsp-headers]
        plugins:
          - {name: response-transformer, config: {add: {headers: ['x-added:yes']}}}
      - name: by-consumer
        paths: [/by-consumer]
        plugins:
          - {name: key-auth}
          - {name: request-transformer, config: {add: {headers: ['x-who:everyone']}}}
consumers:
  - username: vip
    keyauth_credentials: [{key: vip-key}]
  - username: plain
    keyauth_credentials: [{key: plain-key}]
plugins:
  - name: request-transformer
    route: by-consumer
    consumer: vip
    config: {add: {headers: ['x-who:vip']}}
"""


def echoed(b):
    return json.loads(b)


def uh(b, name):
    return header(echoed(b)["headers"], name)


def uh_all(b, name):
    return [v for k, v in echoed(b)["headers"] if k.lower() == name.lower()]


def sha(data):
    return hashlib.sha256(data).hexdigest()


FORM = {"content-type": "application/x-www-form-urlencoded"}
JSON_CT = {"content-type": "application/json"}

with Gatehouse(CONFIG, {"up": up}) as gw:
    p = gw.proxy_port()

    st, hs, b = http_request(p, "GET", "/add/request")
    e = echoed(b)
    r.check(st == 200 and uh(b, "h1") == "v1" and uh(b, "h2") == "value:2" and
            e["target"].endswith("?q1=v1"), f"1 add: {e['target']} {e['headers']}")
    st, hs, b = http_request(p, "GET", "/add/request", headers={"h1": "v3"})
    r.check(uh_all(b, "h1") == ["v3"], "2 add does not overwrite")
    st, hs, b = http_request(p, "POST", "/add/request", headers=FORM, body=b"p0=x")
    r.check(echoed(b)["body_sha256"] == sha(b"p0=x&p1=v1"), "1b add to a form body")
    st, hs, b = http_request(p, "POST", "/add/request", headers=JSON_CT, body=b'{"p0":1}')
    r.check(echoed(b)["body_sha256"] == sha(b'{"p0":1,"p1":"v1"}'), "1c add to a JSON body")
    st, hs, b = http_request(p, "GET", "/append/request")
    r.check(uh_all(b, "h1") == ["v1", "v2"] and uh(b, "h2") == "v1", "3 append")
    st, hs, b = http_request(p, "GET", "/append/request?q1=v0")
    r.check(echoed(b)["target"].endswith("?q1=v0&q1=v1"), "3b append to the query")
    st, hs, b = http_request(p, "POST", "/append/request", headers=JSON_CT,
                             body=b'{"p1":"v0"}')
    r.check(echoed(b)["body_sha256"] == sha(b'{"p1":["v0","v1"]}'),
            "3c append to JSON: a list")
    st, hs, b = http_request(p, "GET", "/hash/request")
    r.check(uh(b, "h1") == "#value_with_hash", "4 '#' is not special")
    st, hs, b = http_request(p, "POST", "/remove/request?q1=v1&q2=v2",
                             headers=dict(FORM, **{"x-to-remove": "true", "x-another-header": "t"}),
                             body=b"toremoveform=yes&nottoremove=yes")
    e = echoed(b)
    r.check(uh(b, "x-to-remove") is None and uh(b, "x-another-header") == "t" and
            e["target"].endswith("?q2=v2") and e["body_sha256"] == sha(b"nottoremove=yes"),
            f"5 remove: {e['target']}")
    st, hs, b = http_request(p, "POST", "/remove/request", headers=JSON_CT,
                             body=b'{"toremoveform":1,"nottoremove":2}')
    r.check(echoed(b)["body_sha256"] == sha(b'{"nottoremove":2}'), "5b remove from JSON")
    mp = (b"--B\r\nContent-Disposition: form-data; name=\"toremoveform\"\r\n\r\nx\r\n"
          b"--B\r\nContent-Disposition: form-data; name=\"nottoremove\"\r\n\r\ny\r\n--B--\r\n")
    st, hs, b = http_request(p, "POST", "/remove/request",
                             headers={"content-type": "multipart/form-data; boundary=B"}, body=mp)
    r.check(echoed(b)["body_sha256"] ==
            sha(b"--B\r\nContent-Disposition: form-data; name=\"nottoremove\"\r\n\r\ny\r\n"
                b"--B--\r\n"), "5c remove from multipart")
    st, hs, b = http_request(p, "POST", "/remove/request", headers=JSON_CT,
                             body=b"malformed json body")
    r.check(st == 200 and echoed(b)["body_sha256"] == sha(b"malformed json body"),
            "6 malformed JSON forwarded unchanged")
    st, hs, b = http_request(p, "POST", "/remove/request", headers=JSON_CT, body=b"{}")
    r.check(echoed(b)["body_length"] == 2, "7 {} stays {}")
    st, hs, b = http_request(p, "POST", "/remove/request", body=b"")
    r.check(st == 200 and echoed(b)["body_length"] == 0, "7b an empty body stays empty")
    st, hs, b = http_request(p, "POST", "/remove/request", headers=JSON_CT,
                             body=b'{"emptyarray":[]}')
    r.check(echoed(b)["body_sha256"] == sha(b'{"emptyarray":[]}'), "8 empty arrays kept")
    st, hs, b = http_request(p, "GET", "/rename/request?q1=a&z=1",
                             headers={"x-to-rename": "new-result", "X-Is-Renamed": "old-result"})
    r.check(uh(b, "x-to-rename") is None and uh_all(b, "x-is-renamed") == ["new-result"] and
            echoed(b)["target"].endswith("?q2=a&z=1"), f"9 rename: {echoed(b)['target']}")
    st, hs, b = http_request(p, "GET", "/rename/request", headers={"x-a-header": "true"})
    r.check(uh(b, "x-is-renamed") is None, "10 rename of an absent header adds nothing")
    st, hs, b = http_request(p, "POST", "/rename/request", headers=JSON_CT, body=b'{"old":1}')
    r.check(echoed(b)["body_sha256"] == sha(b'{"new":1}'), "9b rename in JSON")
    st, hs, b = http_request(p, "GET", "/rename-case/request", headers={"rename": "true"})
    r.check([k for k, v in echoed(b)["headers"] if k.lower() == "rename"] == ["Rename"],
            "11 a case-only rename changes the spelling")
    st, hs, b = http_request(p, "GET", "/replace/request")
    r.check(uh(b, "h1") is None, "12 replace of an absent header adds nothing")
    st, hs, b = http_request(p, "GET", "/replace/request?q1=old&q3=x", headers={"h1": "v0"})
    r.check(uh(b, "h1") == "v1" and echoed(b)["target"].endswith("?q1=new&q3=x"),
            "12b replace when present")
    st, hs, b = http_request(p, "POST", "/replace/request", headers=FORM, body=b"p1=a&p2=b")
    r.check(echoed(b)["body_sha256"] == sha(b"p1=replaced&p2=b"), "12c replace in a form")
    st, hs, b = http_request(p, "GET", "/to-post/request?hello=world&name=marco")
    r.check(echoed(b)["method"] == "POST" and
            echoed(b)["target"].endswith("?hello=world&name=marco"), "13 method to POST")
    st, hs, b = http_request(p, "POST", "/to-get/request?hello=world", headers=FORM,
                             body=b"name=marco")
    r.check(echoed(b)["method"] == "GET" and
            echoed(b)["target"].endswith("?hello=world&name=marco"),
            f"14 method to GET: the form joins the query ({echoed(b)['target']})")
    st, hs, b = http_request(p, "GET", "/make-json/request")
    r.check(echoed(b)["method"] == "POST" and
            echoed(b)["body_sha256"] == sha(b'{"body":"somecontent"}'),
            "15 a GET becomes a POST with a JSON body")
    st, hs, b = http_request(p, "GET", "/requests/user1/foo/user2/bar?q1=20")
    r.check(echoed(b)["target"] ==
            "/requests/user1/foo/user2/bar?q1=20&uri_param1=foo&"
            "uri_param2%5Bsome_index%5D%5B1%5D=bar", f"16 captures: {echoed(b)['target']}")
    st, hs, b = http_request(p, "GET", "/uri/user1/foo/user2/bar")
    r.check(echoed(b)["path"] == "/requests/user2/bar/user1/foo", f"17 replace.uri")
    st, hs, b = http_request(p, "GET", "/fallback/?q1=20")
    r.check(echoed(b)["target"].endswith("?q1=20&uri_param1=default1&uri_param2=default2"),
            f"18 fallbacks: {echoed(b)['target']}")
    st, hs, b = http_request(p, "GET", "/user1/foo/user2/bar")
    r.check(echoed(b)["path"] == "/requests/user1/foo/user2/bar", "20 uri_captures[0]")
    st, hs, b = http_request(p, "GET", "/mixed/foo?q1=20", host="test15.test")
    r.check(echoed(b)["target"].endswith("?uri_param1=foo&uri_param2=test15.test") and
            uh(b, "x-test-header") == "20", f"21 templates: {echoed(b)['target']}")
    st, hs, b = http_request(p, "GET", "/removed-tpl/request?q2=20",
                             headers={"x-remove-header": "its a test"})
    r.check(uh(b, "x-remove-header") is None and uh(b, "x-test-header") == "its a test" and
            echoed(b)["target"].endswith("?q2=its%20a%20test"),
            f"22 a removed header still renders: {echoed(b)['target']}")
    st, hs, b = http_request(p, "GET", "/replaced-tpl/request",
                             headers={"x-replace-header": "the old value"})
    r.check(uh(b, "x-replace-header") == "the new value" and
            uh(b, "x-test-header") == "the old value", "23 rendered with the old value")
    st, hs, b = http_request(p, "GET", "/escape/request")
    r.check(echoed(b)["target"].endswith("?q1=%24%28uri_captures.user1%29"),
            f"24 a quoted literal: {echoed(b)['target']}")
    st, hs, b = http_request(p, "GET", "/shared/request")
    r.check(echoed(b)["target"].endswith("?shared_param1=none"),
            "26 shared values: nothing sets them, the fallback applies")
    for hdrs in ({}, {"Authorization": "Bearer x"}):
        st, hs, b = http_request(p, "GET", "/authz/request", headers=hdrs)
        r.check(uh_all(b, "authorization") == ["Basic test"], f"27 remove then add, {hdrs}")
    st, hs, b = http_request(p, "GET", "/host/request", host="test2.test")
    r.check(uh(b, "host") == "test2.test", "28 add.headers host is ignored")
    st, hs, b = http_request(p, "GET", "/host-replace/request", host="test2.test")
    r.check(uh_all(b, "host") == ["replaced.test"], "replace.headers host sets the upstream Host")
    for path in ("/api/htest", "/gw/api/htest"):
        st, hs, b = http_request(p, "GET", path)
        r.check(echoed(b)["path"] == "/api/v2/htest", f"29 {path}")

    # advanced: allow.body and json_types
    st, hs, b = http_request(p, "POST", "/advanced/x", headers=JSON_CT,
                             body=b'{"keep":1,"drop":2}')
    r.check(echoed(b)["body_sha256"] == sha(b'{"keep":1,"p1":12}'),
            f"advanced: json_types and allow.body: {st}")

    st, hs, b = http_request(p, "POST", "/nested/x", headers=JSON_CT,
                             body=b'{"customer":{"old":1,"info":{}},"items":[{"name":"a",'
                                  b'"secret":1},{"name":"b","secret":2}]}')
    r.check(echoed(b)["body_sha256"] ==
            sha(b'{"customer":{"info":{"phone":"555"},"new":1},"items":[{"name":"a"},'
                b'{"name":"second"}],"meta":{"added":"yes"}}'),
            f"advanced, dots_in_keys false: nested paths, [N] and [*] ({st})")

    # ---- response-transformer --------------------------------------------------------------
    st, hs, b = http_request(p, "GET", "/rsp/x", headers=[
        ("x-echo-set", "X-Remove-Me: 1"), ("x-echo-set", "X-Old: o"),
        ("x-echo-set", "X-Rep: old"), ("x-echo-set", "X-App: one")])
    names = [k.lower() for k, v in hs]
    r.check(st == 200 and "x-remove-me" not in names and header(hs, "x-new") == "o" and
            "x-old" not in names and header(hs, "x-rep") == "new" and
            header(hs, "x-added") == "yes" and
            [v for k, v in hs if k.lower() == "x-app"] == ["one", "two"],
            f"response headers: remove, rename, replace, add, append: {hs}")
    e = json.loads(b)
    r.check("remote_addr" not in e and e.get("verb") == "GET" and "method" not in e and
            e.get("server") == "replaced" and e.get("added") == 5 and e.get("flag") is True and
            e.get("list") == ["v"] and "nope" not in e,
            f"JSON body: remove, rename, replace, add with types, append: {sorted(e)}")
    r.check(header(hs, "transfer-encoding") == "chunked" and header(hs, "content-length") is None,
            "a rewritten body is sent chunked")
    st, hs, b = http_request(p, "GET", "/rsp/x", headers={"x-echo-body-size": "100"})
    r.check(st == 200 and len(b) == 100 and header(hs, "content-length") == "100",
            "a body that is not JSON streams unchanged")
    st, hs, b = http_request(p, "HEAD", "/rsp/x")
    r.check(st == 200 and b == b"", "HEAD: no body to rewrite")
    st, hs, b = http_request(p, "GET", "/rsp-headers/x")
    r.check(st == 200 and header(hs, "x-added") == "yes" and
            header(hs, "content-length") is not None and json.loads(b)["method"] == "GET",
            "header operations only: the body streams with its length")
    data = harness.raw_exchange(p, b"GET /rsp/x HTTP/1.0\r\nHost: x\r\n\r\n", timeout=5)
    head, _, rest = data.partition(b"\r\n\r\n")
    r.check(head.startswith(b"HTTP/1.1 200") and b"content-length" not in head.lower() and
            json.loads(rest).get("verb") == "GET",
            "HTTP/1.0 client: the rewritten body ends with the connection")

    # consumer-scoped instance: applies once key-auth identified the consumer
    st, hs, b = http_request(p, "GET", "/by-consumer/x?apikey=vip-key")
    r.check(uh(b, "x-who") == "vip", f"the consumer's instance wins ({uh(b, 'x-who')})")
    st, hs, b = http_request(p, "GET", "/by-consumer/x?apikey=plain-key")
    r.check(uh(b, "x-who") == "everyone", "others get the route's instance")

# configuration errors
bad = gateway_yaml() + """
services:
  - name: s
    url: http://127.0.0.1:9
    routes:
      - name: r
        paths: [/]
        plugins:
          - name: request-transformer
            config:
              http_method: "HELLO!"
              add: {headers: ['h1', 'bad header:v', 'x:$(10 * uri_captures.user1)']}
              rename: {querystring: [a]}
"""
code, err = harness.check_config(bad)
r.check(code == 1 and "http_method: invalid value: HELLO!" in err and
        "add.headers[0]: key 'h1' has no value" in err and
        "add.headers[1]: 'bad header' is not a valid header" in err and
        "add.headers[2]: value '$(10 * uri_captures.user1)' is not in supported format" in err and
        "rename.querystring[0]: key 'a' has no value" in err, f"config errors: {err}")

r.finish()
