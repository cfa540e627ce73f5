"""The test identity provider (tests/idp/server.mjs: npm's oidc-provider under Node) and a
scripted browser that approves (or declines) device sign-ins through its real web pages."""

from __future__ import annotations

import html
import http.cookiejar
import json
import pathlib
import re
import subprocess
import urllib.parse
import urllib.request

from harness import Proc, REPO, wait_until

IDP_DIR = REPO / "tests" / "idp"


class Idp:
    def __init__(self, workdir: pathlib.Path, shape: str = "generic", alg: str = "RS256",
                 accounts: dict | None = None, device_ttl: int | None = None,
                 client_id: str = "castgate"):
        self.dir = workdir / f"idp-{shape}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.client_id = client_id
        self.shape = shape
        cfg = {"shape": shape, "alg": alg, "client_id": client_id, "accounts": accounts or {}}
        if device_ttl:
            cfg["device_ttl"] = device_ttl
        import os
        env = dict(os.environ, IDP_CONFIG=json.dumps(cfg))
        self.proc = Proc("idp", ["node", str(IDP_DIR / "server.mjs")], self.dir, env=env)
        info = wait_until(self._info, 20, "the identity provider to listen")
        self.port = info["port"]
        self.issuer = info["issuer"]
        self.base = f"http://127.0.0.1:{self.port}"

    def _info(self):
        if not self.proc.alive():
            raise AssertionError("the identity provider died: " + self.proc.stderr())
        text = self.proc.stdout_path.read_text()
        return json.loads(text.splitlines()[0]) if text.strip() else None

    def control(self, path: str, body: dict | None = None) -> dict:
        req = urllib.request.Request(f"{self.base}/__test/{path}", method="POST",
                                     data=json.dumps(body or {}).encode(),
                                     headers={"content-type": "application/json"})
        return json.loads(urllib.request.urlopen(req, timeout=10).read())

    def mint(self, claims: dict, **kw) -> str:
        return self.control("mint", {"claims": claims, **kw})["token"]

    def oidc_config(self, path: pathlib.Path, **overrides) -> pathlib.Path:
        provider = {"preset": self.shape if self.shape != "generic" else "generic",
                    "issuer": self.issuer, "client_id": self.client_id,
                    "algorithms": ["RS256", "ES256"]}
        if self.shape == "entra":
            provider["tenant"] = self.issuer.rsplit("/", 2)[-2]
        provider.update(overrides.pop("provider", {}))
        config = {"provider": provider, "jwks_min_refresh": "1s",
                  "device_flow": {"timeout": "2m", "prompt": "enter"}}
        config.update(overrides)
        path.write_text(json.dumps(config))
        return path

    def stop(self):
        self.proc.stop()


class _Form:
    def __init__(self, action: str, fields: dict):
        self.action = action
        self.fields = fields


def _forms(page: str, base: str) -> list[_Form]:
    forms = []
    for m in re.finditer(r"<form\b([^>]*)>(.*?)</form>", page, re.S | re.I):
        attrs, body = m.group(1), m.group(2)
        action = re.search(r'action="([^"]*)"', attrs)
        fields = {}
        for inp in re.finditer(r"<input\b([^>]*)>", body, re.I):
            a = inp.group(1)
            name = re.search(r'name="([^"]*)"', a)
            value = re.search(r'value="([^"]*)"', a)
            if name:
                fields[html.unescape(name.group(1))] = html.unescape(value.group(1)) if value else ""
        forms.append(_Form(urllib.parse.urljoin(base, html.unescape(action.group(1))) if action else base,
                           fields))
    return forms


def approve(verification_uri: str, user_code: str, login: str = "alice", decline: bool = False):
    """Walks the provider's device pages like a person in a browser: enter the code, confirm (or
    abort), sign in, consent."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def go(url, data=None):
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        r = opener.open(urllib.request.Request(url, data=body), timeout=15)
        return r.geturl(), r.read().decode()

    url, page = go(verification_uri)
    for _ in range(8):
        forms = _forms(page, url)
        if not forms:
            break
        form = forms[0]
        fields = dict(form.fields)
        if "user_code" in fields or "op.deviceInputForm" in page and "user_code" not in fields:
            fields["user_code"] = user_code
        if "op.deviceConfirmForm" in page or "confirm" in page and 'name="abort"' in page:
            fields["abort" if decline else "confirm"] = "yes"
            if decline:
                url, page = go(form.action, fields)
                return page
        if 'name="login"' in page:
            fields["login"] = login
            fields["password"] = "any"
        url, page = go(form.action, fields)
        if "Sign-in Success" in page or "successful" in page.lower():
            return page
    return page
