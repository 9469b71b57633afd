"""The OpenAI-compatible API as OpenAI's own Python SDK sees it, against a
fresh stack (deploy/local/openai-sdk.sh starts it):

    API=http://127.0.0.1:8080 MAIL_DIR=... BILLING_DB=postgres://.../x_billing python check.py

A user signs up (the mailed link), makes two API keys, and with the SDK:
lists the models; for each provider family, a whole completion and a
streamed one with `include_usage`; the tokens reported are what billing
charged the plan, exactly; an unknown model is NotFoundError
(`model_not_found`), a bad parameter BadRequestError; the plan's quota
spent is RateLimitError `insufficient_quota`; a deleted key is
AuthenticationError within a second. Exits non-zero on the first failure.
"""

import glob
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import openai
from openai import OpenAI

API = os.environ["API"]
MAIL_DIR = os.environ["MAIL_DIR"]
BILLING_DB = os.environ["BILLING_DB"]
EMAIL = "sdk@example.com"
PASSWORD = "sdk-check-passphrase"
FAMILIES = ["gpt-4o-mini", "claude-3-5-haiku-latest", "gemini-2.0-flash"]


def call(method, path, body=None, token=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(API + "/api/v1" + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            text = response.read().decode()
    except urllib.error.HTTPError as error:
        sys.exit(f"{method} {path} answered {error.code}: {error.read().decode()}")
    return json.loads(text) if text else None


def mailed_token(deadline=30.0):
    started = time.monotonic()
    while time.monotonic() - started < deadline:
        for path in glob.glob(os.path.join(MAIL_DIR, "*.eml")):
            with open(path, encoding="utf-8", errors="replace") as f:
                found = re.search(r"verify-email\?token=([A-Za-z0-9_-]{43})", f.read())
            if found:
                return found.group(1)
        time.sleep(0.2)
    sys.exit(f"no verification mail in {MAIL_DIR}")


def check(what, condition, detail=""):
    if not condition:
        sys.exit(f"FAILED: {what} {detail}")
    print(f"ok: {what}")


def billed(token, expected, deadline=10.0):
    """Billing's tokensUsed once it reached `expected` (settled by event)."""
    started = time.monotonic()
    while True:
        usage = call("GET", "/billing/usage", token=token)
        if usage["tokensUsed"] == expected or time.monotonic() - started > deadline:
            return usage
        time.sleep(0.1)


def main():
    call("POST", "/auth/register", {"email": EMAIL, "password": PASSWORD, "name": "SDK"})
    call("POST", "/auth/verify-email", {"token": mailed_token()})
    login = call("POST", "/auth/login", {"email": EMAIL, "password": PASSWORD})
    token, user_id = login["accessToken"], login["user"]["id"]
    key = call("POST", "/me/api-keys", {"name": "sdk"}, token)["key"]
    doomed = call("POST", "/me/api-keys", {"name": "doomed"}, token)
    client = OpenAI(base_url=API + "/v1", api_key=key, max_retries=0, timeout=60)

    ids = [m.id for m in client.models.list()]
    check("models lists every family", all(f in ids for f in FAMILIES), str(ids))

    charged = 0
    for model in FAMILIES:
        whole = client.chat.completions.create(
            model=model,
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hello!"},
            ],
            max_tokens=256,
            temperature=0.5,
        )
        reply = whole.choices[0].message
        check(f"{model}: a whole completion", reply.role == "assistant" and reply.content, str(whole))
        u = whole.usage
        check(f"{model}: its usage adds up", u.total_tokens == u.prompt_tokens + u.completion_tokens > 0, str(u))
        charged += u.total_tokens

        stream = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "Stream, please."}],
            stream=True,
            stream_options={"include_usage": True},
        )
        text, usage, finish = "", None, None
        for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
                finish = chunk.choices[0].finish_reason or finish
            if chunk.usage:
                usage = chunk.usage
        check(f"{model}: a streamed completion", text and finish == "stop", repr((text, finish)))
        check(f"{model}: the stream's usage chunk", usage and usage.total_tokens > 0, str(usage))
        charged += usage.total_tokens

    usage = billed(token, charged)
    check("billing charged the plan exactly the tokens reported", usage["tokensUsed"] == charged, f"{usage} vs {charged}")
    check("and holds nothing more", usage["remaining"] == usage["monthlyQuota"] - charged, str(usage))

    try:
        client.chat.completions.create(model="gpt-99", messages=[{"role": "user", "content": "hi"}])
        check("an unknown model is refused", False)
    except openai.NotFoundError as error:
        check("an unknown model is NotFoundError model_not_found", error.code == "model_not_found", str(error))

    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], temperature=5)
        check("a bad temperature is refused", False)
    except openai.BadRequestError as error:
        check("a bad temperature is BadRequestError on its param", error.param == "temperature", str(error))

    # The plan's quota spent.
    subprocess.run(
        ["psql", BILLING_DB, "-qc", f"UPDATE usageTracking SET monthlyQuota = tokensUsed WHERE userId = '{user_id}'"],
        check=True,
    )
    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        check("a spent quota is refused", False)
    except openai.RateLimitError as error:
        check("a spent quota is RateLimitError insufficient_quota", error.code == "insufficient_quota", str(error))

    # A deleted key stops working within a second.
    other = OpenAI(base_url=API + "/v1", api_key=doomed["key"], max_retries=0)
    other.models.list()
    call("DELETE", f"/me/api-keys/{doomed['id']}", token=token)
    time.sleep(1.0)
    try:
        other.models.list()
        check("a deleted key is refused", False)
    except openai.AuthenticationError as error:
        check("a deleted key is AuthenticationError invalid_api_key", error.code == "invalid_api_key", str(error))
    print(f"all checks passed with openai {openai.__version__}")


if __name__ == "__main__":
    main()
