"""schemathesis hooks of `make contract`.

A model is data (`GET /models`), not a shape a schema can state: every
request that names a model (a non-empty string) names the one setup.py
found, in every phase. Values that are not such a string (the negative
cases: wrong type, empty) go as generated.
"""

import os

import schemathesis

MODEL = os.environ["MODEL"]


@schemathesis.hook
def before_call(context, case, **kwargs):
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("model"), str) and body["model"]:
        body["model"] = MODEL
