"""A tiny round-robin HTTP proxy on loopback, standing for the load balancer in front of two
web machines in the bench's two-instance run. Standard library only; not for production."""

import http.client
import itertools
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection"}


class RoundRobinProxy:
    def __init__(self, backends: list[int]):
        self.backends = itertools.cycle(backends)
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _forward(self):
                with proxy.lock:
                    port = next(proxy.backends)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
                headers["X-Forwarded-For"] = self.client_address[0]
                upstream = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                try:
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                finally:
                    upstream.close()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in HOP_HEADERS and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "RoundRobinProxy":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


if __name__ == "__main__":
    import sys

    # `python proxy.py PORT...`: prints the proxy's own port, then serves until terminated.
    proxy = RoundRobinProxy([int(port) for port in sys.argv[1:]])
    print(proxy.port, flush=True)
    proxy.server.serve_forever()
