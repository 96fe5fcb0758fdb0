"""Twin of services/panda_nav/server.py: the nav sidecar (an ASGI app that uvicorn serves on :11436, with
/health) and production's nav prompt builder, which swapbench calls verbatim (decision 9)."""

import json
from collections.abc import Awaitable, Callable
from typing import Any

PORT = 11436
ACTIONS = ("forward", "left", "right", "back", "stop")


def build_vlm_prompt(goal: str) -> str:
    """The prompt production sends with each camera frame."""
    return (
        f"You drive a small robot car. Your goal: {goal}. Look at the camera image and choose the next move. "
        f'Answer with JSON only: {{"action": one of {", ".join(ACTIONS)}}}.'
    )


async def app(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    if scope["type"] != "http":
        return
    ok = scope["path"] == "/health"
    body = json.dumps({"status": "ok"} if ok else {"error": "not found"}).encode()
    await send({"type": "http.response.start", "status": 200 if ok else 404,
                "headers": [(b"content-type", b"application/json")]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})
