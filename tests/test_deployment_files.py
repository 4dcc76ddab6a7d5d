"""The Dockerfile and compose.yaml stay consistent with the settings model and the app.

Images cannot be built here, so the files are parsed: compose passes the gateway only real settings (names from
`Settings`, not a list kept here), and with its required variables set they load as valid production settings;
what production requires comes from required (`${VAR:?…}`) variables; ports agree; the health check asks a route
the app answers; the image runs as a non-root user with no secret in it.
"""

from __future__ import annotations

import json
import re
import shlex
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from gateway.app import create_app
from gateway.settings import Settings, SettingsError, load_settings
from tests.conftest import SETTING_NAMES

ROOT = Path(__file__).resolve().parent.parent
SECRET_SETTINGS = frozenset(
    str(f.alias) for f in Settings.model_fields.values() if SecretStr in (f.annotation, *typing.get_args(f.annotation))
)
RUNTIME_VARIABLES = frozenset({"PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PIP_NO_CACHE_DIR"})
"""Variables an image may set that are not the gateway's settings (anything else must be a setting)."""
VARIABLE = re.compile(r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$(?P<bare>\w+)")


# compose.yaml


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def service(name: str) -> dict[str, Any]:
    services = compose()["services"]
    assert name in services, f"compose.yaml has no {name} service"
    return dict(services[name])


def environment(definition: dict[str, Any]) -> dict[str, str]:
    """A service's environment as written (mapping or `KEY=value` list form)."""
    raw = definition.get("environment") or {}
    if isinstance(raw, list):
        return dict(str(item).split("=", 1) for item in raw)
    return {str(key): str(value) for key, value in raw.items()}


class MissingVariable(Exception):
    pass


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's interpolation: `${V}`, `${V:-default}`, `${V-default}`, `${V:?error}`, `${V?error}`, `$$`."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match["name"] or match["bare"]
        op, arg = match["op"], match["arg"] or ""
        present = name in variables and (variables[name] != "" or not (op or "").startswith(":"))
        if present:
            return variables[name]
        if op in {":?", "?"}:
            raise MissingVariable(f"{name}: {arg}")
        return arg if op in {":-", "-"} else ""

    return VARIABLE.sub(replace, value)


def required_variables(value: str) -> set[str]:
    return {m["name"] for m in VARIABLE.finditer(value) if m["op"] in {":?", "?"}}


def gateway_environment(variables: dict[str, str]) -> dict[str, str]:
    return {name: interpolate(value, variables) for name, value in environment(service("gateway")).items()}


def example_variables() -> dict[str, str]:
    """A value for every required variable of the gateway's environment, as an operator would set them."""
    names = set().union(*(required_variables(v) for v in environment(service("gateway")).values()))
    return {name: f"{name.lower()}-{'x' * 40}" for name in names}


def settings_from(env: dict[str, str]) -> Settings:
    return load_settings(**env, _env_file=None)


def test_compose_passes_the_gateway_only_real_settings() -> None:
    unknown = set(environment(service("gateway"))) - SETTING_NAMES
    assert unknown == set(), f"not settings of gateway/settings.py: {sorted(unknown)}"


def test_compose_environment_is_valid_production_settings_for_its_own_services() -> None:
    variables = example_variables()
    settings = settings_from(gateway_environment(variables))
    assert settings.production

    database = make_url(settings.database_url)
    assert database.drivername == "postgresql+asyncpg"
    postgres = service(str(database.host))
    assert str(postgres["image"]).startswith("postgres:15")
    postgres_env = {k: interpolate(v, variables) for k, v in environment(postgres).items()}
    assert (database.username, database.password, database.database) == (
        postgres_env["POSTGRES_USER"],
        postgres_env["POSTGRES_PASSWORD"],
        postgres_env["POSTGRES_DB"],
    )
    assert (database.port or 5432) == 5432

    assert settings.redis_url is not None
    redis = service(str(make_url(settings.redis_url).host))
    assert str(redis["image"]).startswith("redis:7")

    depends = service("gateway")["depends_on"]
    for name in (str(database.host), str(make_url(settings.redis_url).host)):
        assert depends[name] == {"condition": "service_healthy"}
        assert service(name)["healthcheck"]["test"]


def test_what_production_requires_comes_from_required_variables() -> None:
    """Each setting production cannot start without is a `${VAR:?…}` (so compose refuses to start without it),
    and no secret setting has a value or a default written in the file."""
    written = environment(service("gateway"))
    env = gateway_environment(example_variables())
    required = set()
    for name in env:
        try:
            settings_from({k: v for k, v in env.items() if k != name})
        except SettingsError:
            required.add(name)
    assert "GATEWAY_JWT_SECRET" in required  # production refuses the development secret
    for name in required | (SECRET_SETTINGS & set(written)):
        assert re.fullmatch(r"\$\{\w+:\?[^}]*\}", written[name]), f"{name} must be a required variable"
    for name in required_variables(" ".join(written.values())):
        with pytest.raises(MissingVariable):
            gateway_environment({k: v for k, v in example_variables().items() if k != name})


# Dockerfile


@dataclass
class Stage:
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [arguments for name, arguments in self.instructions if name == keyword]

    def last(self, keyword: str) -> str:
        found = self.all(keyword)
        assert found, f"the Dockerfile's final stage has no {keyword}"
        return found[-1]


def dockerfile() -> list[Stage]:
    """Stages of the Dockerfile, each with its instructions (continuation lines joined, comments dropped)."""
    logical: list[str] = []
    pending = ""
    for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pending += stripped.removesuffix("\\").strip() + " "
        if not stripped.endswith("\\"):
            logical.append(pending.strip())
            pending = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        if keyword.upper() == "FROM":
            stages.append(Stage(arguments.split()[0]))
        else:
            assert stages, "an instruction before FROM"
            stages[-1].instructions.append((keyword.upper(), arguments.strip()))
    return stages


def image_environment(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for arguments in stage.all("ENV"):
        words = shlex.split(arguments)
        if "=" not in words[0]:  # legacy `ENV NAME value`
            env[words[0]] = " ".join(words[1:])
        else:
            for word in words:
                name, _, value = word.partition("=")
                env[name] = value
    return env


def exec_form(arguments: str) -> list[str]:
    parsed = json.loads(arguments)
    assert isinstance(parsed, list)
    return [str(part) for part in parsed]


def test_the_image_is_python_slim_and_installs_the_package() -> None:
    stages = dockerfile()
    assert all(stage.base.startswith("python:3.11-slim") for stage in stages)
    runs = " ".join(run for stage in stages for run in stage.all("RUN"))
    assert re.search(r"pip install (--\S+ )*\.(\s|$)", runs), "the package itself is installed"


def test_the_image_runs_as_a_non_root_user_with_no_secret_in_it() -> None:
    final = dockerfile()[-1]
    user = final.last("USER").split(":")[0]
    assert user not in {"root", "0"}
    assert final.instructions.index(("USER", final.last("USER"))) > max(
        i for i, (keyword, _) in enumerate(final.instructions) if keyword in {"RUN", "COPY"}
    ), "USER comes after everything that needs root"

    env = image_environment(final)
    assert set(env) - RUNTIME_VARIABLES <= SETTING_NAMES, "every other variable the image sets is a setting"
    assert not SECRET_SETTINGS & set(env), "no secret is baked in"
    args = {shlex.split(a)[0].split("=")[0] for stage in dockerfile() for a in stage.all("ARG")}
    assert not SECRET_SETTINGS & args
    settings = settings_from({**env, **{"GATEWAY_JWT_SECRET": "y" * 40}})
    assert settings.production, "the image defaults to production (which refuses development secrets)"

    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".env", ".venv", "*.db", ".git"} <= set(ignored), "local secrets and databases stay out of the context"


def test_the_image_migrates_then_serves_on_all_interfaces() -> None:
    command = " ".join(exec_form(dockerfile()[-1].last("CMD")))
    upgrade, serve = command.find("gateway db upgrade &&"), command.find("exec gateway serve --host 0.0.0.0")
    assert 0 <= upgrade < serve, command


def test_ports_agree_between_the_settings_the_image_and_compose() -> None:
    final = dockerfile()[-1]
    image_port = settings_from(image_environment(final) | {"GATEWAY_ENV": "development"}).port
    assert final.last("EXPOSE").split() == [str(image_port)]
    compose_port = settings_from(gateway_environment(example_variables())).port
    published = [str(mapping).rsplit(":", 1)[-1] for mapping in service("gateway")["ports"]]
    assert published == [str(compose_port)]
    assert compose_port == image_port


async def test_the_health_check_asks_a_route_the_app_answers(tmp_path: Path) -> None:
    final = dockerfile()[-1]
    healthcheck = final.last("HEALTHCHECK")
    options, _, command = healthcheck.partition("CMD ")
    assert re.search(r"--interval=\S+", options)
    probe = " ".join(exec_form(command))
    paths = re.findall(r"['\"](/[\w/-]*)['\"]", probe)
    assert len(paths) == 1, probe
    assert "GATEWAY_PORT" in probe, "the probe follows the configured port"
    assert "healthcheck" not in service("gateway") or not service("gateway")["healthcheck"].get("disable")

    settings = load_settings(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}", _env_file=None)
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
        response = await client.get(paths[0])
    await app.state.engine.dispose()
    assert response.status_code == 200
