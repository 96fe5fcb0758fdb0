"""Twin of the phone daemon (`python3 phone_call.py auto`): its API answers /health on :8770."""

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        ok = self.path == "/health"
        body = b'{"status":"ok","mode":"auto"}' if ok else b"{}"
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    if sys.argv[1:] != ["auto"]:
        sys.exit("usage: phone_call.py auto")
    ThreadingHTTPServer(("127.0.0.1", 8770), Handler).serve_forever()
