"""A real HTTP server on 127.0.0.1 with scripted answers, for the download tests (one copy for all).

`files[path]`: the bytes served (a `Range: bytes=N-` request gets 206 and the rest); `status[path]`:
always answer that code; `fail[path]`: the next N answers are 503; `cut[path]`: the next N answers send
half the body and close the connection; `redirect[path]`: 302 to that URL. Every request is recorded
as (path, Range header, Authorization header).
"""

from __future__ import annotations

import http.server
import threading


class LocalServer:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.status: dict[str, int] = {}
        self.fail: dict[str, int] = {}
        self.cut: dict[str, int] = {}
        self.redirect: dict[str, str] = {}
        self.requests: list[tuple[str, str | None, str | None]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: object) -> None:
                pass

            def _empty(self, code: int, headers: dict[str, str] | None = None) -> None:
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                rng = self.headers.get("Range")
                outer.requests.append((self.path, rng, self.headers.get("Authorization")))
                path = self.path.split("?")[0]
                if path in outer.redirect:
                    return self._empty(302, {"Location": outer.redirect[path]})
                if path in outer.status:
                    return self._empty(outer.status[path])
                if outer.fail.get(path, 0) > 0:
                    outer.fail[path] -= 1
                    return self._empty(503)
                data = outer.files.get(path)
                if data is None:
                    return self._empty(404)
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                body = data[start:]
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if outer.cut.get(path, 0) > 0:
                    outer.cut[path] -= 1
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return None
                self.wfile.write(body)
                return None

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str, auth: str = "") -> str:
        return f"http://{auth + '@' if auth else ''}127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
