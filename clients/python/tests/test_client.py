"""The client fails closed on every answer that is not a decision (stdlib only; no ZTA needed).

Run: python -m unittest discover -s clients/python/tests -p 'test_*.py'
"""

import http.server
import json
import pathlib
import sys
import threading
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from zta_client import Client, Decision, Denied  # noqa: E402


class _Canned(http.server.BaseHTTPRequestHandler):
    """Answers every POST with the class's (status, body); remembers the bodies it got."""

    answer = (200, b"{}")
    received: list = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server name
        length = int(self.headers.get("content-length", 0))
        _Canned.received.append(json.loads(self.rfile.read(length)))
        status, body = _Canned.answer
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class ClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Canned)
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()
        cls.client = Client(f"http://127.0.0.1:{cls.server.server_address[1]}")

    @classmethod
    def tearDownClass(cls) -> None:
        cls.client.close()
        cls.server.shutdown()

    def decide(self, status: int, body: bytes) -> Decision:
        _Canned.answer = (status, body)
        return self.client.check_tool_call({"bearer": "t"}, "web_search", {"query": "q"})

    def test_an_allow_carries_the_request_id(self) -> None:
        decision = self.decide(200, b'{"decision": true, "context": {"id": "r1"}}')
        self.assertEqual(decision, Decision(True, "r1", None))
        self.assertEqual(
            _Canned.received[-1],
            {
                "subject": {"type": "agent", "properties": {"credential": {"bearer": "t"}}},
                "action": {"name": "call_tool"},
                "resource": {"type": "tool", "id": "web_search"},
                "context": {"arguments": {"query": "q"}},
            },
        )

    def test_a_deny_carries_the_reason(self) -> None:
        decision = self.decide(200, b'{"decision": false, "context": {"id": "r2", "reason": "denied by policy"}}')
        self.assertEqual(decision, Decision(False, "r2", "denied by policy"))
        with self.assertRaises(Denied):
            decision.raise_if_denied()

    def test_anything_but_a_decision_denies(self) -> None:
        for status, body in [
            (400, b'{"error": "`action` is required"}'),
            (500, b"oops"),
            (200, b"not json"),
            (200, b'{"decision": "true"}'),
            (200, b'{"decision": 1}'),
            (200, b"[true]"),
        ]:
            with self.subTest(status=status, body=body):
                decision = self.decide(status, body)
                self.assertFalse(decision.allowed)
                self.assertTrue(decision.reason)

    def test_a_failing_credential_source_denies_without_a_request(self) -> None:
        sent = len(_Canned.received)

        def expired() -> dict:
            raise RuntimeError("refresh failed")

        decision = self.client.check_tool_call(expired, "web_search")
        self.assertEqual(decision, Decision(False, None, "no credential: refresh failed"))
        self.assertEqual(len(_Canned.received), sent)

    def test_only_http_urls(self) -> None:
        for url in ["ftp://x", "127.0.0.1:8180", "http://"]:
            with self.subTest(url=url), self.assertRaises(ValueError):
                Client(url)


if __name__ == "__main__":
    unittest.main()
