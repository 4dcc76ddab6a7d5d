from __future__ import annotations

import socket

import httpx

from gateway.app import create_app
from gateway.settings import load_settings


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_readyz_is_503_with_a_reason_when_the_database_is_unreachable() -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/nowhere"
    app = create_app(load_settings(DATABASE_URL=url, _env_file=None))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
    ):
        assert (await http.get("/healthz")).status_code == 200
        response = await http.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["database"].startswith("unavailable")

        query = await http.post("/graphql", json={"query": "{ customers { totalCount } }"})
        assert query.status_code == 200
        error = query.json()["errors"][0]
        assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        assert "Traceback" not in error["message"]
