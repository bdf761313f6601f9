"""A scripted server side built on wsproto, for driving `WeexConnection` byte by byte in tests.

It is deliberately not our simulator: wsproto's server role produces the frames, so the client
core is checked against an implementation we did not write.
"""

from __future__ import annotations

import json
from typing import Any

import wsproto
from wsproto import events as ws


class ServerPeer:
    def __init__(self) -> None:
        self.conn = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
        self.request: ws.Request | None = None
        self.texts: list[str] = []
        self.pings: list[bytes] = []
        self.pongs: list[bytes] = []
        self.closes: list[tuple[int, str | None]] = []

    def receive(self, data: bytes) -> None:
        """Feed what the client sent; record what it meant."""
        self.conn.receive_data(data)
        for event in self.conn.events():
            if isinstance(event, ws.Request):
                self.request = event
            elif isinstance(event, ws.TextMessage):
                self.texts.append(event.data)
            elif isinstance(event, ws.Ping):
                self.pings.append(bytes(event.payload))
            elif isinstance(event, ws.Pong):
                self.pongs.append(bytes(event.payload))
            elif isinstance(event, ws.CloseConnection):
                self.closes.append((event.code, event.reason))

    def headers(self) -> dict[str, str]:
        assert self.request is not None
        return {k.decode().lower(): v.decode() for k, v in self.request.extra_headers}

    def json_sent(self) -> list[Any]:
        return [json.loads(text) for text in self.texts]

    def accept(self) -> bytes:
        return self.conn.send(ws.AcceptConnection())

    def reject(self, status: int, body: bytes = b"") -> bytes:
        data = self.conn.send(
            ws.RejectConnection(
                status_code=status,
                headers=[(b"content-type", b"application/json")],
                has_body=bool(body),
            )
        )
        if body:
            data += self.conn.send(ws.RejectData(data=body, body_finished=True))
        return data

    def text(self, message: str | dict[str, Any]) -> bytes:
        if not isinstance(message, str):
            message = json.dumps(message)
        return self.conn.send(ws.Message(data=message))

    def fragments(self, message: str, parts: int) -> bytes:
        size = max(1, len(message) // parts)
        chunks = [message[i : i + size] for i in range(0, len(message), size)]
        out = b""
        for index, chunk in enumerate(chunks):
            finished = index == len(chunks) - 1
            out += self.conn.send(ws.Message(data=chunk, message_finished=finished))
        return out

    def binary(self, data: bytes) -> bytes:
        return self.conn.send(ws.Message(data=data))

    def ping(self, payload: bytes = b"srv") -> bytes:
        return self.conn.send(ws.Ping(payload=payload))

    def pong(self, payload: bytes) -> bytes:
        return self.conn.send(ws.Pong(payload=payload))

    def close(self, code: int = 1000, reason: str = "") -> bytes:
        return self.conn.send(ws.CloseConnection(code=code, reason=reason))
