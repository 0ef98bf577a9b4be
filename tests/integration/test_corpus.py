"""Kong's own declarative files: gatehouse judges them as Kong does.

01-24 are accepted by Kong and must be accepted; a file that uses a plugin gatehouse does not
compile in yet must instead be refused with an error naming that plugin (it becomes an
acceptance check as soon as the plugin exists). 51-60 are rejected by Kong and must be rejected
with an error that names the same field.
"""
import glob
import os
import re

from harness import SRC, Results, run

r = Results()
corpus = os.environ.get("GATEHOUSE_CORPUS",
                        os.path.join(SRC, "..", "shared", "reference", "kong-configs"))
local = os.path.join(SRC, "tests", "integration", "configs")

# For each rejected file: substrings that must all appear in the errors (Kong's field).
REJECT = {
    "51": ["services[0].host: expected a string", "services[0].path: must not have empty",
           "services[0].port: value should be between 0 and 65535",
           "services[0].protocol: expected one of", "services[0].retries: value should be"],
    "52": ["services[0].routes[0]: must set one of 'methods', 'hosts', 'headers', 'paths', "
           "'snis' when 'protocols' is 'https'"],
    "53": ["services[0].routes[0].paths[0]: should start with: / (fixed path) or ~/ (regex "
           "path)"],
    "54": ["services[0].plugins[0].consumer: value must be null"],
    "55": ["services[0].plugins[0].name: plugin 'foo' not enabled"],
    "56": ["consumers[1].custom_id: uniqueness violation: 'consumers' entity with custom_id "
           "set to 'conflict' already declared"],
    "57": ["failed parsing declarative configuration: expected an object"],
    "58": ["invalid regex: '/regex.+(' (PCRE returned: missing closing parenthesis)"],
    "59": ["services[0].routes[0].service: invalid reference 'service: "
           "{\"id\":\"769bdf51-16df-5476-9830-ef26800b5448\"}' (no such entry in 'services')"],
    "60": ["services[0].protocol: expected one of", "services[0].name: invalid value '@gobo'",
           "services[1].routes[0].hosts[1]: invalid hostname: \\\\99"],
}

_, help_out, _ = run("--help")
code, plugins_out, _ = run("--plugins")
compiled = set(plugins_out.split()) if code == 0 else set()


def plugins_of(text):
    return set(re.findall(r"^\s*-?\s*name:\s*([a-z][a-z0-9-]*)\s*$", text, re.M)) & {
        "key-auth", "jwt", "openid-connect", "cors", "request-transformer",
        "request-transformer-advanced", "acl", "mtls-auth"} | set(
        re.findall(r'"name":\s*"(key-auth|jwt|openid-connect|cors|request-transformer|acl)"',
                   text))


files = sorted(glob.glob(os.path.join(corpus, "[0-9][0-9]-*")) +
               glob.glob(os.path.join(local, "*")))
r.check(len(files) >= 34, f"corpus found at {corpus} ({len(files)} files)")
for path in files:
    name = os.path.basename(path)
    num = name[:2]
    with open(path) as f:
        text = f.read()
    code, out, err = run("-t", "-c", path)
    if name.startswith("ok-") or (num.isdigit() and int(num) < 50):
        missing = sorted(plugins_of(text) - compiled)
        if missing:
            r.check(code == 1 and all(f"plugin '{p}' not enabled" in err for p in missing),
                    f"{name}: refused only for its plugin(s) {missing}: {err!r}")
            others = [l for l in err.splitlines()
                      if ": " in l and "not enabled" not in l and "warning:" not in l
                      and not l.startswith("configuration ")]
            r.check(not others, f"{name}: no other error: {others!r}")
        else:
            r.check(code == 0, f"{name}: accepted: {err!r}")
            r.check("is valid" in out, f"{name}: says it is valid")
    else:
        r.check(code == 1, f"{name}: rejected (exit {code})")
        for want in REJECT.get(num, []):
            r.check(want in err, f"{name}: error mentions {want!r}: {err!r}")
        if name.startswith("bad-"):
            first = text.splitlines()[0]
            want = first[len("# expect: "):] if first.startswith("# expect: ") else None
            r.check(want is not None and want in err, f"{name}: {want!r} in {err!r}")

r.finish()
