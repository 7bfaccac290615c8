"""A real SMTP server (aiosmtpd) in-process that can be told how to answer each message."""

import asyncio
import threading
from email import message_from_bytes, policy

from aiosmtpd.controller import Controller

from tests.support.postgres import free_port


class ScriptedHandler:
    def __init__(self, server: "ScriptedSmtpServer"):
        self.server = server

    async def handle_RCPT(self, smtp, session, envelope, address, rcpt_options):
        if address in self.server.refused_recipients:
            return "550 5.1.1 Recipient address rejected: no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp, session, envelope):
        self.server.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        self.server.data_received.set()
        answer = self.server.next_answer()
        if answer == "hangup":
            smtp.transport.close()
            return "421 closing"
        if answer.startswith("stall:"):
            await asyncio.sleep(float(answer.split(":", 1)[1]))
            return "250 2.0.0 OK queued after a pause"
        return answer


class ScriptedSmtpServer:
    """Answers are consumed one per message: '250 ...', '421 ...', '550 ...', 'hangup',
    'stall:SECONDS'; when the script runs out every message gets 250."""

    def __init__(self):
        self.port = free_port()
        self.messages = []
        self.script: list[str] = []
        self.refused_recipients: set[str] = set()
        self.data_received = threading.Event()
        self._lock = threading.Lock()
        self.controller = Controller(ScriptedHandler(self), hostname="127.0.0.1", port=self.port)

    def answer(self, *answers: str) -> None:
        with self._lock:
            self.script.extend(answers)

    def next_answer(self) -> str:
        with self._lock:
            return self.script.pop(0) if self.script else "250 2.0.0 OK queued"

    def start(self) -> "ScriptedSmtpServer":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
