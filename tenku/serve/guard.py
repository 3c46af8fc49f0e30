"""A pure ASGI middleware in front of FastAPI: the bearer token and the body size are checked as the request
arrives, before the multipart parser spools a single upload byte to disk.

FastAPI runs dependencies (the token) and the form parser's size checks only after the whole body has been
read; a client without a token could otherwise fill the temporary folder with one chunked request.
"""

from __future__ import annotations

import hmac
import json


class BodyTooLarge(Exception):
    """Raised from `receive` on the first chunk past the cap, which stops the parser reading more."""


async def _send_error(send, status: int, detail: str, limit: str, headers=()):
    body = json.dumps({"detail": detail, "limit": limit}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """Refuse /v1 requests without the token (401) and any request whose body passes `max_body` bytes (413),
    counting bytes as they arrive (chunked requests carry no Content-Length)."""

    def __init__(self, app, token: str | None, max_body: int, per_file: int):
        self.app, self.token, self.max_body, self.per_file = app, token, max_body, per_file

    def _authorized(self, scope) -> bool:
        if self.token is None or not scope["path"].startswith("/v1"):
            return True  # the page and its static files hold no data; the page asks for the token
        value = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        scheme, _, cred = value.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(cred.strip().encode(), self.token.encode())

    def _too_large(self) -> str:
        return f"request body is larger than {self.max_body} bytes (max_upload_bytes per file is {self.per_file})"

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        # 1. The token, from the headers alone.
        if not self._authorized(scope):
            return await _send_error(send, 401, "missing or wrong bearer token (send 'Authorization: Bearer <token>')",
                                     "token", [(b"www-authenticate", b"Bearer")])
        # 2. A declared length over the cap: refused before reading.
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_body:
            return await _send_error(send, 413, self._too_large(), "max_upload_bytes")
        # 3. Bytes counted as they arrive; past the cap, the app's own answer (a parse error) is replaced.
        state = {"bytes": 0, "over": False, "started": False}

        async def counted_receive():
            message = await receive()
            if message["type"] == "http.request":
                state["bytes"] += len(message.get("body", b""))
                if state["bytes"] > self.max_body:
                    state["over"] = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message):
            if state["over"]:
                return  # swallowed: the 413 below answers instead
            state["started"] = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except BodyTooLarge:
            pass
        except Exception:
            if not state["over"]:
                raise
        if state["over"] and not state["started"]:
            await _send_error(send, 413, self._too_large(), "max_upload_bytes")
