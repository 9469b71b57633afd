"""Signs a user up on a fresh stack and makes the resources schemathesis
needs ids of; prints them as shell assignments for contract.sh.

    API=http://127.0.0.1:8080/api/v1 MAIL_DIR=... python3 setup.py

Standard library only. The user: registered, verified through the mailed
link (a file in MAIL_DIR), logged in three times (one session for every
operation, one that `POST /auth/logout` may end, one that
`DELETE /me/sessions/{id}` may end). Two conversations (one for
`DELETE /conversations/{id}`), a message sent (so a message id and a
cursor exist).
"""

import glob
import json
import os
import re
import shlex
import sys
import time
import urllib.error
import urllib.request

API = os.environ["API"]
MAIL_DIR = os.environ["MAIL_DIR"]
EMAIL = "contract@example.com"
PASSWORD = "contract-check-passphrase"


def call(method, path, body=None, token=None, expect=(200, 201, 202, 204)):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(API + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    if status not in expect:
        sys.exit(f"setup: {method} {path} answered {status}: {text}")
    return json.loads(text) if text else None


def mailed_token(deadline=30.0):
    """The token of the verification link mailed to EMAIL."""
    started = time.monotonic()
    while time.monotonic() - started < deadline:
        for path in glob.glob(os.path.join(MAIL_DIR, "*.eml")):
            with open(path, encoding="utf-8", errors="replace") as f:
                found = re.search(r"verify-email\?token=([A-Za-z0-9_-]{43})", f.read())
            if found:
                return found.group(1)
        time.sleep(0.2)
    sys.exit(f"setup: no verification mail in {MAIL_DIR}")


def main():
    call("POST", "/auth/register", {"email": EMAIL, "password": PASSWORD, "name": "Contract"})
    call("POST", "/auth/verify-email", {"token": mailed_token()})
    login = {"email": EMAIL, "password": PASSWORD}
    token = call("POST", "/auth/login", login)["accessToken"]
    logout_token = call("POST", "/auth/login", login)["accessToken"]
    doomed_token = call("POST", "/auth/login", login)["accessToken"]
    sessions = call("GET", "/me/sessions", token=doomed_token)["items"]
    doomed_session = next(s["id"] for s in sessions if s["current"])
    model = call("GET", "/models", token=token)["items"][0]["id"]
    kept = call("POST", "/conversations", {"model": model, "title": "Kept"}, token)["id"]
    doomed = call("POST", "/conversations", {"model": model, "title": "Doomed"}, token)["id"]
    sent = call("POST", f"/conversations/{kept}/messages", {"content": "Hello"}, token)
    message = sent["userMessage"]["id"]
    cursor = call("GET", "/conversations?limit=1", token=token)["nextCursor"]
    if not cursor:
        sys.exit("setup: no nextCursor with two conversations and limit=1")
    values = {
        "ACCESS_TOKEN": token,
        "LOGOUT_TOKEN": logout_token,
        "CONVERSATION_ID": kept,
        "DOOMED_CONVERSATION_ID": doomed,
        "DOOMED_SESSION_ID": doomed_session,
        "MESSAGE_ID": message,
        "MODEL": model,
        "CURSOR": cursor,
    }
    for name, value in values.items():
        print(f"export {name}={shlex.quote(value)}")


if __name__ == "__main__":
    main()
