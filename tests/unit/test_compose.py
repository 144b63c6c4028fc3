"""docker-compose.yml and the Dockerfile give a deployment whose alerts work from the start
and that is secure by default (docs/security.md): Prometheus can scrape the worker and the
exporter, Kafka and the worker keep their data in volumes, the image runs as a dedicated
user, Prometheus' lifecycle API is off; every connection is TLS with a login, each app
service acts as its own role, and every password comes from a file under /run/secrets that
`docker compose run --rm secrets-init` (deploy/compose/secrets-init.sh) makes, never from an
environment value or a command line.

No Docker engine is needed: `docker-compose config` renders and validates the file (no
variables need setting), the secrets folder is made by the same script compose runs, and
the Kafka start script writes its configuration (and, with stand-in Kafka tools, formats)
on its own."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_CONFIG = REPO / "deploy/prometheus/prometheus.compose.yml"
ALERTMANAGER_CONFIG = REPO / "deploy/alertmanager/alertmanager.compose.yml"
DATASOURCES = REPO / "grafana/provisioning/datasources/prometheus.yml"
COMPOSE_DIR = REPO / "deploy/compose"
KAFKA_START = COMPOSE_DIR / "kafka-start.sh"
SECRETS_INIT = COMPOSE_DIR / "secrets-init.sh"
# Variables the file once required (passwords in the environment): it must not need them.
OLD_VARIABLES = ("REDIS_PASSWORD", "GRAFANA_ADMIN_PASSWORD")
RUN_SECRETS = "/run/secrets/"
APP_SERVICES = ("topics", "worker", "exporter")
# Folder of private copies under secrets/compose/ -> the services that may mount them, and
# the uid they run as (from their images; the app's from the Dockerfile, checked below).
COPY_FOLDERS: dict[str, tuple[set[str], int | None]] = {
    "kafka": ({"kafka"}, 1000),
    "redis": ({"redis"}, 999),
    "prometheus": ({"prometheus"}, 65534),
    "alertmanager": ({"alertmanager"}, 65534),
    "grafana": ({"grafana"}, 472),
    "app": (set(APP_SERVICES), None),
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """docker-compose.yml as Compose renders it (anchors, merges and variables resolved),
    with none of the variables it once required set."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (Debian package docker-compose)")
    env = {k: v for k, v in os.environ.items() if k not in OLD_VARIABLES}
    result = subprocess.run(
        [binary, "-f", "docker-compose.yml", "config"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rendered: dict[str, Any] = yaml.safe_load(result.stdout)
    rendered["__text__"] = result.stdout
    return rendered


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A secrets folder made by deploy/compose/secrets-init.sh, as `docker compose run --rm
    secrets-init` makes ./secrets (as root here, the copies get their services' owners)."""
    folder = tmp_path_factory.mktemp("compose") / "secrets"
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    result = subprocess.run(
        ["sh", str(SECRETS_INIT), str(folder)],
        env={**os.environ, "PATH": path},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return folder


def _service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    service: dict[str, Any] = compose["services"][name]
    return service


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the KEY=VALUE form
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _volume_targets(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source (volume name or host path), short or long syntax."""
    targets = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = str(volume.get("source", "")), str(volume["target"])
        targets[target] = source
    return targets


def _mounted_secrets(compose: dict[str, Any], name: str) -> dict[str, str]:
    """/run/secrets/<target> -> the host file, for the secrets service ``name`` mounts."""
    mounted = {}
    for entry in _service(compose, name).get("secrets") or []:
        source = entry if isinstance(entry, str) else entry["source"]
        target = source if isinstance(entry, str) else entry.get("target", source)
        path = target if target.startswith("/") else RUN_SECRETS + target
        mounted[path] = str(compose["secrets"][source]["file"])
    return mounted


def _in_folder(host_file: str, folder: Path) -> Path:
    """A compose secret file (./secrets/...) inside the folder secrets-init made."""
    return folder / Path(host_file).relative_to(REPO / "secrets")


def _mounted_file(compose: dict[str, Any], service: str, path: str, folder: Path) -> Path:
    mounted = _mounted_secrets(compose, service)
    assert path in mounted, f"{service} does not mount {path} (it mounts {sorted(mounted)})"
    return _in_folder(mounted[path], folder)


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return [command] if isinstance(command, str) else [str(c) for c in command]


def _flags(command: list[str]) -> dict[str, str]:
    """--name=value and --name value pairs of a command line."""
    flags = {}
    for i, arg in enumerate(command):
        if not arg.startswith("--"):
            continue
        name, eq, value = arg.partition("=")
        if eq:
            flags[name] = value
        elif i + 1 < len(command) and not command[i + 1].startswith("--"):
            flags[name] = command[i + 1]
        else:
            flags[name] = ""
    return flags


def _healthcheck(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else str(test)


def _scrape_targets() -> set[str]:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    return {
        target
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }


def test_worker_web_server_listens_where_prometheus_scrapes(compose: dict[str, Any]) -> None:
    env = _environment(_service(compose, "worker"))
    assert env.get("DEMANDMON_WORKER_WEB_BIND") == "0.0.0.0", (
        "bound to 127.0.0.1 the worker cannot be scraped, and DemandmonWorkerDown inhibits "
        "every per-BCU alert"
    )
    assert f"worker:{env['DEMANDMON_WORKER_WEB_PORT']}" in _scrape_targets()


def test_exporter_listens_where_prometheus_scrapes(compose: dict[str, Any]) -> None:
    exporter = _service(compose, "exporter")
    command = exporter["command"]
    assert command[command.index("--host") + 1] == "0.0.0.0"
    port = _environment(exporter)["DEMANDMON_EXPORTER_PORT"]
    assert f"exporter:{port}" in _scrape_targets()


def test_scrape_targets_are_compose_services(compose: dict[str, Any]) -> None:
    for target in _scrape_targets():
        host = target.rsplit(":", 1)[0]
        assert host == "localhost" or host in compose["services"], target


def test_kafka_writes_to_its_volume(compose: dict[str, Any]) -> None:
    kafka = _service(compose, "kafka")
    log_dirs = _environment(kafka).get("KAFKA_LOG_DIRS")
    assert log_dirs is not None, "without KAFKA_LOG_DIRS the image writes to /tmp"
    mounts = _volume_targets(kafka)
    assert log_dirs in mounts, f"KAFKA_LOG_DIRS={log_dirs} is not a mounted volume: {mounts}"
    assert mounts[log_dirs] in compose["volumes"], "a named volume, so it outlives the container"


def test_worker_data_dir_is_a_volume(compose: dict[str, Any]) -> None:
    worker = _service(compose, "worker")
    data_dir = _environment(worker).get("DEMANDMON_WORKER_DATA_DIR")
    assert data_dir, "the worker's data folder must be set"
    mounts = _volume_targets(worker)
    assert data_dir in mounts, f"{data_dir} is not a mounted volume: {mounts}"
    # Named, so that Docker seeds it with the image's ownership of the folder.
    assert mounts[data_dir] in compose["volumes"]
    assert data_dir == _dockerfile_env()["DEMANDMON_WORKER_DATA_DIR"]


def test_prometheus_lifecycle_api_is_off(compose: dict[str, Any]) -> None:
    command = _service(compose, "prometheus")["command"]
    assert not any(str(arg).startswith("--web.enable-lifecycle") for arg in command), command


def _dockerfile() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = (REPO / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _dockerfile_env() -> dict[str, str]:
    env = {}
    for line in _dockerfile():
        if line.upper().startswith("ENV "):
            for pair in line[4:].split():
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def _image_user() -> tuple[str, str]:
    """The final USER of the image: (user, name or uid as written)."""
    users = [line.split()[1] for line in _dockerfile() if line.upper().startswith("USER ")]
    assert users, "the image must not run as root"
    return users[-1].split(":")[0], users[-1]


def _names_for(user: str) -> set[str]:
    """The user as written plus its name or uid from the useradd line that creates it."""
    names = {user}
    for line in _dockerfile():
        for command in line.split("&&"):
            if "useradd" not in command:
                continue
            words = command.split()
            uid = words[words.index("--uid") + 1] if "--uid" in words else None
            name = words[-1]
            if user in (uid, name):
                names |= {name} | ({uid} if uid else set())
    return names


def test_image_runs_as_a_dedicated_user() -> None:
    user, written = _image_user()
    assert user not in {"root", "0", "nobody", "65534"}, written
    names = _names_for(user)
    assert len(names) == 2, f"USER {written} is not created by a useradd with --uid in the image"


def test_image_creates_the_data_dir_owned_by_its_user() -> None:
    data_dir = _dockerfile_env().get("DEMANDMON_WORKER_DATA_DIR")
    assert data_dir, "the image must set DEMANDMON_WORKER_DATA_DIR"
    owners = _names_for(_image_user()[0])
    commands = [c.split() for line in _dockerfile() for c in line.split("&&")]
    owned = False
    for words in commands:
        if data_dir not in words:
            continue
        if "install" in words and "-d" in words and "-o" in words:
            owned |= words[words.index("-o") + 1] in owners
        if "chown" in words:
            args = [w for w in words[words.index("chown") + 1 :] if not w.startswith("-")]
            owned |= args[0].split(":")[0] in owners
    assert owned, f"{data_dir} is not created owned by the image's user ({sorted(owners)})"


# Secure by default ---------------------------------------------------------------------
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|CREDENTIAL|_(KEY|AUTH)(_+FILE)?$")
CREDENTIALS_IN_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s@]*:[^/\s@]*@")


def _secret_values(folder: Path) -> list[str]:
    """Every password and token secrets-init made (to look for in the rendered file)."""
    return [
        path.read_text().strip()
        for path in folder.iterdir()
        if path.suffix in (".password", ".token")
    ]


def test_rendering_needs_no_variables_and_holds_no_password(
    compose: dict[str, Any], secrets_dir: Path
) -> None:
    text = compose["__text__"]
    for value in _secret_values(secrets_dir):
        assert value not in text
    assert not CREDENTIALS_IN_URL.search(text), "a URL with a password in it"
    for name, service in compose["services"].items():
        for key, value in _environment(service).items():
            if SECRET_NAME.search(key.upper()):
                assert key.endswith("_FILE"), f"{name}: {key} must be a *_FILE variable"
                assert value.startswith(RUN_SECRETS), f"{name}: {key}={value}"
                assert value in _mounted_secrets(compose, name), f"{name}: {value} not mounted"
        argv = _command(service) + [str(a) for a in service.get("entrypoint") or []]
        if "healthcheck" in service:
            argv += _healthcheck(service).split()
        for arg in argv:
            assert not re.match(r"--?(requirepass|masterauth|pass(word)?|a)(=|$)", arg), (
                f"{name}: a password on the command line ({arg})"
            )
            assert not re.fullmatch(r"[0-9a-f]{32,}", arg), f"{name}: {arg}"


def test_every_app_service_acts_as_its_role_with_secrets_from_files(
    compose: dict[str, Any],
) -> None:
    roles = {  # service -> (Kafka user, Redis user): docs/security.md's roles
        "topics": ("admin", None),
        "worker": ("worker", "worker"),
        "exporter": (None, "exporter"),
    }
    for name, (kafka_user, redis_user) in roles.items():
        env = _environment(_service(compose, name))
        mounted = _mounted_secrets(compose, name)
        assert env["DEMANDMON_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL", name
        assert env["DEMANDMON_REDIS_URL"].startswith("rediss://"), name
        assert "@" not in env["DEMANDMON_REDIS_URL"], name
        for ca in ("DEMANDMON_KAFKA_CA_FILE", "DEMANDMON_REDIS_CA_FILE"):
            assert env[ca] in mounted, f"{name}: {ca}"
        assert env.get("DEMANDMON_KAFKA_USERNAME") == kafka_user, name
        assert env.get("DEMANDMON_REDIS_USERNAME") == redis_user, name
        for service, user in (("kafka", kafka_user), ("redis", redis_user)):
            variable = f"DEMANDMON_{service.upper()}_PASSWORD_FILE"
            if user is None:  # least privilege: no password for a service the role skips
                assert variable not in env, f"{name}: {variable}"
            else:
                assert env[variable] == f"{RUN_SECRETS}{service}-{user}.password", name
        for key, value in env.items():
            if key.endswith("_FILE"):
                assert value in mounted, f"{name}: {key}={value} is not mounted"
    for name in ("worker", "exporter"):
        env = _environment(_service(compose, name))
        assert env["DEMANDMON_METRICS_USERNAME"]
        for key in ("WEB_TLS_CERT_FILE", "WEB_TLS_KEY_FILE", "METRICS_PASSWORD_FILE"):
            assert env[f"DEMANDMON_{key}"].startswith(RUN_SECRETS), f"{name}: {key}"
    assert _environment(_service(compose, "exporter"))["DEMANDMON_ALERTS_TOKEN_FILE"] == (
        f"{RUN_SECRETS}alerts.token"
    )


def test_secrets_init_makes_every_file_compose_mounts(
    compose: dict[str, Any], secrets_dir: Path
) -> None:
    assert stat.S_IMODE(secrets_dir.stat().st_mode) == 0o700
    app_uid = int(_image_user()[0])
    for name, entry in compose["secrets"].items():
        host = Path(str(entry["file"]))
        assert host.is_relative_to(REPO / "secrets"), f"{name}: {host} outside ./secrets"
        made = _in_folder(str(host), secrets_dir)
        assert made.is_file(), f"{name}: secrets-init does not make {made.name}"
        relative = made.relative_to(secrets_dir)
        if relative.parts[0] != "compose":  # a certificate, public, from the folder itself
            text = made.read_text()
            assert "BEGIN CERTIFICATE" in text and "PRIVATE KEY" not in text, name
            assert stat.S_IMODE(made.stat().st_mode) == 0o644, name
            continue
        folder = relative.parts[1]
        users, uid = COPY_FOLDERS[folder]
        assert stat.S_IMODE(made.stat().st_mode) == 0o400, name
        if os.geteuid() == 0:
            assert made.stat().st_uid == (app_uid if uid is None else uid), name
        assert made.read_bytes() == (secrets_dir / made.name).read_bytes(), name
        for service in compose["services"]:
            if host.as_posix() in _mounted_secrets(compose, service).values():
                assert service in users, f"{service} mounts {folder}'s copy {made.name}"
    for path in secrets_dir.iterdir():
        if path.suffix in (".password", ".token", ".key", ".acl", ".yml"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def test_secrets_init_runs_as_a_one_shot_on_the_secrets_folder(compose: dict[str, Any]) -> None:
    init = _service(compose, "secrets-init")
    assert init.get("profiles"), "`docker compose up` must not start it"
    assert init.get("network_mode") == "none"
    assert "build" in init, "the project image, which has `demandmon secrets`"
    mounts = _volume_targets(init)
    assert Path(mounts["/secrets"]) == REPO / "secrets"
    assert init["command"] == ["/secrets"]
    assert "/secrets/" in (REPO / ".gitignore").read_text().splitlines()


def _run_kafka_start(
    compose: dict[str, Any], secrets_dir: Path, tmp_path: Path, *args: str, **extra: str
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **_environment(_service(compose, "kafka")),
        "SECRETS_DIR": str(secrets_dir),
        "CONFIG_DIR": str(tmp_path / "config"),
        **extra,
    }
    return subprocess.run(
        ["sh", str(KAFKA_START), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _properties(path: Path) -> dict[str, str]:
    """A .properties file as Kafka reads it: the last value of a key wins."""
    props = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            props[key] = value
    return props


def test_kafka_start_script_is_posix_sh() -> None:
    for script in (KAFKA_START, SECRETS_INIT):
        result = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        if shutil.which("shellcheck"):
            result = subprocess.run(
                ["shellcheck", "-s", "sh", str(script)], capture_output=True, text=True
            )
            assert result.returncode == 0, result.stdout


def test_kafka_is_sasl_ssl_with_scram_and_acls(
    compose: dict[str, Any], secrets_dir: Path, tmp_path: Path
) -> None:
    kafka = _service(compose, "kafka")
    assert _command(kafka) == ["/bin/sh", "/opt/demandmon/kafka-start.sh"]
    assert Path(_volume_targets(kafka)["/opt/demandmon/kafka-start.sh"]) == KAFKA_START
    # Variables cannot weaken it: the script's security settings come last and win.
    weaker = {
        "KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND": "true",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,SASL_SSL:PLAINTEXT",
        "KAFKA_SUPER_USERS": "User:ANONYMOUS",
    }
    result = _run_kafka_start(compose, secrets_dir, tmp_path, "config", **weaker)
    assert result.returncode == 0, result.stderr
    config = tmp_path / "config"
    props = _properties(config / "server.properties")
    listeners = dict(item.split("://") for item in props["listeners"].split(","))
    assert set(listeners) == {"SASL_SSL", "CONTROLLER"}
    assert props["listener.security.protocol.map"] == "CONTROLLER:SSL,SASL_SSL:SASL_SSL"
    assert props["advertised.listeners"].startswith("SASL_SSL://")
    assert props["inter.broker.listener.name"] == "SASL_SSL"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["sasl.mechanism.inter.broker.protocol"] == "SCRAM-SHA-512"
    jaas = props["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"]
    assert 'username="admin"' in jaas
    assert props["authorizer.class.name"].endswith("StandardAuthorizer")
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"].split(";")[0] == "User:admin"
    assert "User:ANONYMOUS" not in props["super.users"]
    assert props["listener.name.controller.ssl.client.auth"] == "required"
    mounted = {Path(p).name for p in _mounted_secrets(compose, "kafka")}
    for listener in ("sasl_ssl", "controller"):
        for store in ("keystore", "truststore"):
            assert props[f"listener.name.{listener}.ssl.{store}.type"] == "PEM"
            location = Path(props[f"listener.name.{listener}.ssl.{store}.location"])
            assert location.parent == secrets_dir and location.name in mounted
    assert props["log.dirs"] == _environment(kafka)["KAFKA_LOG_DIRS"]
    for written in ("server.properties", "admin-client.properties"):
        assert stat.S_IMODE((config / written).stat().st_mode) == 0o600
    client = _properties(config / "admin-client.properties")
    assert client["security.protocol"] == "SASL_SSL"
    assert "--command-config" in _healthcheck(kafka)
    assert "/etc/kafka/demandmon/admin-client.properties" in _healthcheck(kafka)


def _fake_kafka(tmp_path: Path) -> tuple[Path, Path]:
    """Stand-ins for the image's Kafka tools that record how they were called."""
    dist, record = tmp_path / "dist", tmp_path / "record"
    (dist / "bin").mkdir(parents=True)
    record.mkdir()
    (dist / "bin/kafka-run-class.sh").write_text(
        "#!/bin/sh\n"
        'printf "%s\\n" "$*" >>"$RECORD/argv"\n'
        'case $1 in @*) cp "${1#@}" "$RECORD/args.$$" ;; *) echo Hz8SkyGuQ-ixeSEVFgGlgQ ;; esac\n'
    )
    (dist / "bin/kafka-server-start.sh").write_text(
        '#!/bin/sh\nprintf "%s\\n" "$*" >"$RECORD/started"\n'
    )
    for script in (dist / "bin").iterdir():
        script.chmod(0o755)
    return dist, record


def _argfiles(record: Path) -> list[str]:
    return [path.read_text() for path in sorted(record.glob("args.*"))]


def test_kafka_formats_with_the_scram_users_and_no_password_on_a_command_line(
    compose: dict[str, Any], secrets_dir: Path, tmp_path: Path
) -> None:
    dist, record = _fake_kafka(tmp_path)
    logs = tmp_path / "data"
    logs.mkdir()
    extra = {"DIST_DIR": str(dist), "RECORD": str(record), "KAFKA_LOG_DIRS": str(logs)}
    result = _run_kafka_start(compose, secrets_dir, tmp_path, **extra)
    assert result.returncode == 0, result.stderr
    passwords = {
        user: (secrets_dir / f"kafka-{user}.password").read_text().strip()
        for user in ("admin", "worker", "replay")
    }
    [format_args] = _argfiles(record)
    assert format_args.startswith('"kafka.tools.StorageTool"\n"format"\n')
    for user, password in passwords.items():
        assert f'"SCRAM-SHA-512=[name={user},password={password}]"' in format_args
    assert (record / "started").read_text().split() == [str(tmp_path / "config/server.properties")]
    assert not list((tmp_path / "config").glob("*.args")), "argument files are removed"
    # Formatted already: no format; the worker's and replay's credentials are set again.
    (logs / "meta.properties").write_text("formatted\n")
    for path in record.glob("args.*"):
        path.unlink()
    result = _run_kafka_start(compose, secrets_dir, tmp_path, **extra)
    assert result.returncode == 0, result.stderr
    deadline = time.monotonic() + 20
    while len(_argfiles(record)) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    calls = _argfiles(record)
    assert not any('"format"' in call for call in calls)
    for user in ("worker", "replay"):
        assert any(
            f'"{user}"' in call and f"password={passwords[user]}]" in call for call in calls
        ), user
    argv = (record / "argv").read_text()
    assert not any(password in argv for password in passwords.values())


def test_redis_is_tls_only_with_its_acl_file(compose: dict[str, Any], secrets_dir: Path) -> None:
    redis = _service(compose, "redis")
    command = _command(redis)
    flags = _flags(command)
    assert flags["--port"] == "0" and flags["--tls-port"] == "6379"
    for flag in ("--tls-cert-file", "--tls-key-file", "--tls-ca-cert-file", "--aclfile"):
        _mounted_file(compose, "redis", flags[flag], secrets_dir)
    acl = _mounted_file(compose, "redis", flags["--aclfile"], secrets_dir).read_text()
    assert "user default off" in acl
    assert flags["--appendonly"] == "yes" and flags["--appendfsync"] == "everysec"
    assert "--requirepass" not in flags
    check = _healthcheck(redis)
    assert "--tls" in check and "--user admin" in check
    assert "REDISCLI_AUTH=" in check and "/run/secrets/redis-admin.password" in check
    _mounted_file(compose, "redis", "/run/secrets/redis-admin.password", secrets_dir)


def _web_config(compose: dict[str, Any], service: str, folder: Path) -> dict[str, Any]:
    flags = _flags(_command(_service(compose, service)))
    path = flags["--web.config.file"]
    doc: dict[str, Any] = yaml.safe_load(_mounted_file(compose, service, path, folder).read_text())
    tls = doc["tls_server_config"]
    for name in (tls["cert_file"], tls["key_file"]):  # relative to the web configuration
        _mounted_file(compose, service, str(Path(path).parent / name), folder)
    assert doc["basic_auth_users"]["demandmon"].startswith("$2")
    return doc


def _client_config(compose: dict[str, Any], service: str, config: dict[str, Any]) -> None:
    """A healthcheck's or scrape's http client configuration: CA and password files."""
    mounted = _mounted_secrets(compose, service)
    assert config["tls_config"]["ca_file"] in mounted
    assert config["basic_auth"]["password_file"] in mounted


def test_prometheus_serves_https_with_basic_auth(
    compose: dict[str, Any], secrets_dir: Path
) -> None:
    prometheus = _service(compose, "prometheus")
    _web_config(compose, "prometheus", secrets_dir)
    check = prometheus["healthcheck"]["test"]
    assert check[1:4] == ["promtool", "check", "ready"]
    flags = _flags(check)
    assert flags["--url"].startswith("https://localhost:")
    client = _volume_targets(prometheus)[flags["--http.config.file"]]
    _client_config(compose, "prometheus", yaml.safe_load(Path(client).read_text()))


def test_prometheus_scrapes_and_alerts_over_https_with_basic_auth(
    compose: dict[str, Any], secrets_dir: Path
) -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    mounts = _volume_targets(_service(compose, "prometheus"))
    assert Path(mounts["/etc/prometheus/prometheus.yml"]) == PROMETHEUS_CONFIG
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for app in ("worker", "exporter"):
        job = jobs[f"demandmon-{app}"]
        env = _environment(_service(compose, app))
        assert job["scheme"] == "https"
        _client_config(compose, "prometheus", job)
        assert job["basic_auth"]["username"] == env["DEMANDMON_METRICS_USERNAME"]
        ours = _mounted_file(compose, "prometheus", job["basic_auth"]["password_file"], secrets_dir)
        theirs = _mounted_file(compose, app, env["DEMANDMON_METRICS_PASSWORD_FILE"], secrets_dir)
        assert ours.read_text() == theirs.read_text()
    [alerting] = config["alerting"]["alertmanagers"]
    assert alerting["scheme"] == "https"
    _client_config(compose, "prometheus", alerting)
    assert alerting["basic_auth"]["username"] == "demandmon"
    assert all(job.get("scheme") == "https" for job in jobs.values())


def test_alertmanager_serves_https_and_calls_the_exporter_with_its_token(
    compose: dict[str, Any], secrets_dir: Path
) -> None:
    alertmanager = _service(compose, "alertmanager")
    flags = _flags(_command(alertmanager))
    assert flags["--cluster.listen-address"] == "", "no unauthenticated cluster port"
    _web_config(compose, "alertmanager", secrets_dir)
    mounts = _volume_targets(alertmanager)
    assert Path(mounts[flags["--config.file"]]) == ALERTMANAGER_CONFIG
    exporter = _environment(_service(compose, "exporter"))
    token = _mounted_file(compose, "exporter", exporter["DEMANDMON_ALERTS_TOKEN_FILE"], secrets_dir)
    hooks = [
        hook
        for receiver in yaml.safe_load(ALERTMANAGER_CONFIG.read_text())["receivers"]
        for hook in receiver.get("webhook_configs") or []
    ]
    assert hooks
    for hook in hooks:
        assert hook["url"] == f"https://exporter:{exporter['DEMANDMON_EXPORTER_PORT']}/alerts"
        http = hook["http_config"]
        assert http["authorization"].get("type", "Bearer") == "Bearer"
        ours = _mounted_file(
            compose, "alertmanager", http["authorization"]["credentials_file"], secrets_dir
        )
        assert ours.read_text() == token.read_text()
        assert http["tls_config"]["ca_file"] in _mounted_secrets(compose, "alertmanager")
    check = alertmanager["healthcheck"]["test"]
    check_flags = _flags(check)
    assert check_flags["--alertmanager.url"].startswith("https://localhost:")
    client = Path(mounts[check_flags["--http.config.file"]])
    _client_config(compose, "alertmanager", yaml.safe_load(client.read_text()))


def test_grafana_needs_a_login_and_reaches_prometheus_over_https(
    compose: dict[str, Any], secrets_dir: Path
) -> None:
    grafana = _service(compose, "grafana")
    env = _environment(grafana)
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert "GF_SECURITY_ADMIN_PASSWORD" not in env
    _mounted_file(compose, "grafana", env["GF_SECURITY_ADMIN_PASSWORD__FILE"], secrets_dir)
    mounts = _volume_targets(grafana)
    assert Path(mounts["/etc/grafana/provisioning"]) == REPO / "grafana/provisioning"
    [source] = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    assert source["url"] == "https://prometheus:9090"
    assert source["basicAuth"] is True and source["basicAuthUser"] == "demandmon"
    assert source["jsonData"]["tlsAuthWithCACert"] is True
    for key in ("basicAuthPassword", "tlsCACert"):
        reference = re.fullmatch(r"\$__file\{(.+)\}", source["secureJsonData"][key])
        assert reference, f"{key} must be read from a file"
        _mounted_file(compose, "grafana", reference.group(1), secrets_dir)
    web = _mounted_file(compose, "grafana", "/run/secrets/web.password", secrets_dir)
    assert web.read_text() == (secrets_dir / "web.password").read_text()


def test_ports_are_published_on_loopback_only(compose: dict[str, Any]) -> None:
    published = 0
    for name, service in compose["services"].items():
        for port in service.get("ports") or []:
            host_ip = port.get("host_ip") if isinstance(port, dict) else str(port).split(":")[0]
            assert host_ip == "127.0.0.1", f"{name}: {port}"
            published += 1
    assert published == 2, "Prometheus and Grafana only"
