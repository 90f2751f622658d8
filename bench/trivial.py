"""A trivial HTTP server that replays a recorded row stream as fast as it can, to measure the
ceiling of the benchmark's client (`python -m bench.trivial FILE REPEAT`; prints its port).

It answers every request with the file's bytes `REPEAT` times in one chunked response, written
in 256 KiB chunks straight to the socket: no parsing, no JSON, so whatever rows/s the client
reaches here is the most it can measure of any server."""

from __future__ import annotations

import asyncio
import sys

_CHUNK = 256 * 1024


async def _serve(payload: bytes, repeat: int) -> None:
    chunks = [payload[i : i + _CHUNK] for i in range(0, len(payload), _CHUNK)]
    framed = [f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in chunks]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    return
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                )
                for _ in range(repeat):
                    for frame in framed:
                        writer.write(frame)
                        await writer.drain()
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str]) -> int:
    with open(argv[1], "rb") as f:
        payload = f.read()
    try:
        asyncio.run(_serve(payload, int(argv[2])))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
