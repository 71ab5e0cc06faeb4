"""A minimal loopback HTTP/1.1 server answering each platform's documented success body.

The emulators check everything a platform documents, which keeps them at a few hundred
requests a second: a benchmark of a one-call-per-contact platform against them measures
the emulator. This stub answers by path alone (no auth check, nothing stored), keeps
connections alive, and counts the requests it answered, so a client's own cost shows.

Run as ``python bench/stub.py``: it prints its URL on the first line of stdout.
``GET /__stub__/count`` answers the number of requests answered so far (itself excluded).
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys

# Path → body, from the platforms' documents: Gleantap's newContact answers the saved
# contact's ``_id``; iVvy's getContactList a page of results (none found here, so each
# contact is a look-up and a create), addOrUpdateContact ``success`` and the id.
ANSWERS: dict[bytes, bytes] = {
    b"/v2/ExternalApi/newContact": json.dumps({"status": "success", "_id": "c1"}).encode(),
    b"/api/1.0/contact?action=getContactList": json.dumps(
        {"meta": {"totalResults": 0, "start": 0, "perPage": 10, "count": 0}, "results": []}
    ).encode(),
    b"/api/1.0/contact?action=addOrUpdateContact": json.dumps({"success": True, "id": 1}).encode(),
}


def _response(status: bytes, body: bytes) -> bytes:
    head = b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nContent-Length: "
    return head + str(len(body)).encode() + b"\r\n\r\n" + body


class _Connection(asyncio.Protocol):
    answered = 0

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return  # the body is still on its way
            self.buffer = self.buffer[end + 4 + length :]
            self._answer(head.split(b" ", 2)[1])

    def _answer(self, path: bytes) -> None:
        assert self.transport is not None
        if path == b"/__stub__/count":
            self.transport.write(_response(b"200 OK", str(_Connection.answered).encode()))
            return
        _Connection.answered += 1
        body = ANSWERS.get(path)
        if body is None:
            self.transport.write(_response(b"404 Not Found", b'{"error": "not stubbed"}'))
        else:
            self.transport.write(_response(b"200 OK", body))


async def _main() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Connection, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"http://{host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(_main())
    except KeyboardInterrupt:
        sys.exit(0)
