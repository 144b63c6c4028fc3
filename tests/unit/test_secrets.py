"""deploy/secrets: the CA and service certificates, passwords, the Redis ACL file and the
web configurations of a secure deployment; files created private (never chmod-ed), kept
when they exist. And the secure stack's state files, rendered without starting anything.
"""

from __future__ import annotations

import ast
import hashlib
import ipaddress
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store

import deploy.secrets.folder
from deploy.secrets import (
    KAFKA_USERS,
    REDIS_USERS,
    SERVICE_NAMES,
    SecretsError,
    SecretsLayout,
    generate,
)
from deploy.secrets.cli import main
from deploy.secrets.files import create_private, replace_private
from deploy.secrets.redis_acl import acl_file, role_rules
from deploy.stack import control, secure
from deploy.stack.control import PORT_NAMES
from deploy.stack.layout import ROLES, StackLayout, StackState
from deploy.stack.procs import StackError
from deploy.stack.services import kafka_properties, redis_conf

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = {"demandmon", "agents", "streams", "schemas"}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> SecretsLayout:
    return generate(tmp_path_factory.mktemp("s") / "secrets", "dm")


@pytest.fixture(autouse=True)
def quick_bcrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lowest bcrypt cost for folders made inside a test (the module's shared folder
    keeps the real cost, checked below)."""
    monkeypatch.setattr(deploy.secrets.folder, "BCRYPT_ROUNDS", 4)


@pytest.fixture
def no_chmod(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any chmod while the fixture is active fails the test: files are created private."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"chmod called: {args}")

    monkeypatch.setattr(os, "chmod", refuse)
    monkeypatch.setattr(os, "fchmod", refuse)
    monkeypatch.setattr(Path, "chmod", refuse)
    yield


# Files and modes ---------------------------------------------------------------------
def test_folder_0700_secrets_0600_certificates_public(made: SecretsLayout) -> None:
    assert _mode(made.folder) == 0o700
    public = set(made.public_files())
    secret = set(made.secret_files())
    assert {p.name for p in public} == {"ca.pem", *(f"{s}.pem" for s in SERVICE_NAMES)}
    on_disk = set(made.folder.iterdir())
    assert on_disk == public | secret, "every file is listed, nothing left over"
    for path in secret:
        assert _mode(path) == 0o600, path.name
    for path in public:
        assert _mode(path) == 0o644 & ~_umask(), path.name


def test_nothing_is_ever_chmod_ed(tmp_path: Path, no_chmod: None) -> None:
    layout = generate(tmp_path / "secrets", "dm")
    assert _mode(layout.folder) == 0o700
    assert all(_mode(p) == 0o600 for p in layout.secret_files())
    replace_private(tmp_path / "state.json", "{}\n")
    assert _mode(tmp_path / "state.json") == 0o600


def test_a_private_file_created_under_a_permissive_umask_is_still_0600(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        assert create_private(tmp_path / "x.password", "secret\n")
        replace_private(tmp_path / "y.env", "A=1\n")
        layout = generate(tmp_path / "secrets", "dm")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "x.password") == 0o600
    assert _mode(tmp_path / "y.env") == 0o600
    assert _mode(layout.folder) == 0o700
    assert _mode(layout.ca_cert) == 0o644


def test_passwords_are_random_and_distinct(made: SecretsLayout) -> None:
    files = [
        *(made.kafka_password(u) for u in KAFKA_USERS),
        *(made.redis_password(u) for u in REDIS_USERS),
        made.metrics_password,
        made.alerts_token,
        made.web_password,
    ]
    values = [made.read(p) for p in files]
    assert len(set(values)) == len(values)
    assert all(len(v) >= 32 and v.isalnum() for v in values)


# Certificates ------------------------------------------------------------------------
def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


@pytest.mark.parametrize("service", list(SERVICE_NAMES))
def test_certificates_chain_to_the_ca_for_their_names(made: SecretsLayout, service: str) -> None:
    ca = _cert(made.ca_cert)
    leaf = _cert(made.cert(service))
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == {"localhost", *SERVICE_NAMES[service]}
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    builder = PolicyBuilder().store(Store([ca]))
    names: list[x509.DNSName | x509.IPAddress] = [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.DNSName("localhost"),
        *(x509.DNSName(n) for n in SERVICE_NAMES[service]),
    ]
    for name in names:
        chain = builder.build_server_verifier(name).verify(leaf, [])  # raises if not valid
        assert chain[-1] == ca
    with pytest.raises(x509.verification.VerificationError):
        builder.build_server_verifier(x509.DNSName("elsewhere.example")).verify(leaf, [])
    # The key file holds the certificate's key.
    key = made.read(made.key(service)).encode()
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    assert load_pem_private_key(key, None).public_key() == leaf.public_key()
    usages = set(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    client = service in ("kafka", "kafka-controller")
    assert ExtendedKeyUsageOID.SERVER_AUTH in usages
    assert (ExtendedKeyUsageOID.CLIENT_AUTH in usages) is client


def test_the_ca_is_a_ca_and_signs_nothing_below_its_leaves(made: SecretsLayout) -> None:
    ca = _cert(made.ca_cert)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    leaf = _cert(made.cert("web")).extensions.get_extension_for_class(x509.BasicConstraints)
    assert not leaf.value.ca


def test_kafka_keystores_hold_key_certificate_and_ca(made: SecretsLayout) -> None:
    for service in ("kafka", "kafka-controller"):
        text = made.read(made.keystore(service))
        assert text.count("-----BEGIN PRIVATE KEY-----") == 1  # PKCS#8, unencrypted
        certs = x509.load_pem_x509_certificates(text.encode())
        assert certs == [_cert(made.cert(service)), _cert(made.ca_cert)]


# Web configurations and the ACL file -----------------------------------------------------
@pytest.mark.parametrize("service", ["prometheus", "alertmanager"])
def test_web_configs_hold_tls_and_a_bcrypt_hash(made: SecretsLayout, service: str) -> None:
    path = made.prometheus_web_config if service == "prometheus" else made.alertmanager_web_config
    doc = yaml.safe_load(path.read_text())
    tls = doc["tls_server_config"]
    # Relative names: both resolve them against the web config's folder.
    assert (made.folder / tls["cert_file"]) == made.cert(service)
    assert (made.folder / tls["key_file"]) == made.key(service)
    [(user, hashed)] = doc["basic_auth_users"].items()
    assert user == "demandmon"
    assert hashed.startswith("$2b$12$")
    assert bcrypt.checkpw(made.read(made.web_password).encode(), hashed.encode())
    assert not bcrypt.checkpw(b"wrong", hashed.encode())
    assert made.read(made.web_password) not in path.read_text()


def test_acl_file_default_off_and_hashed_passwords(made: SecretsLayout) -> None:
    lines = made.redis_acl.read_text().splitlines()
    assert lines[0] == "user default off resetpass resetkeys resetchannels -@all"
    users = {line.split()[1]: line for line in lines[1:]}
    assert set(users) == set(REDIS_USERS)
    for user, line in users.items():
        password = made.read(made.redis_password(user))
        assert password not in line
        digest = hashlib.sha256(password.encode()).hexdigest()
        assert line.startswith(f"user {user} on #{digest} ")
        assert line.endswith(" ".join(role_rules(user, "dm")))


def test_acl_rules_per_role() -> None:
    assert role_rules("admin", "p") == ("~p*", "resetchannels", "+@all", "-@dangerous")
    worker = role_rules("worker", "p")
    assert (
        worker[0] == "~p*"
        and "+@write" in worker
        and worker[-3:]
        == (
            "-@dangerous",
            "-scan",
            "-randomkey",
        )
    )
    for reader in ("exporter", "reader"):
        rules = role_rules(reader, "p")
        assert "+@write" not in rules and "+@read" in rules and "+evalsha" in rules
    replay = role_rules("replay", "p")
    assert [r for r in replay if r.startswith("~")] == ["~p*:registry", "~p*:replay:*"]
    assert "+@read" not in replay and "+@write" not in replay and "+get" not in replay
    with pytest.raises(ValueError):
        role_rules("worker", "P*")  # not a key prefix: would widen the glob
    with pytest.raises(ValueError):
        role_rules("root", "p")
    assert acl_file({}, "p") == "user default off resetpass resetkeys resetchannels -@all\n"


# Idempotence ------------------------------------------------------------------------
def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_ino) for p in folder.iterdir()}


def test_running_again_keeps_every_file(tmp_path: Path) -> None:
    first = generate(tmp_path / "secrets", "dm")
    before = _snapshot(first.folder)
    again = generate(tmp_path / "secrets", "dm")
    assert again == first
    assert _snapshot(first.folder) == before


def test_a_missing_file_is_remade_and_what_derives_from_it_follows(tmp_path: Path) -> None:
    layout = generate(tmp_path / "secrets", "dm")
    before = _snapshot(layout.folder)
    layout.redis_password("worker").unlink()
    layout.cert("redis").unlink()
    generate(tmp_path / "secrets", "dm")
    after = _snapshot(layout.folder)
    changed = {name for name in before if before[name][0] != after[name][0]}
    assert changed == {"redis-worker.password", "redis.pem", "redis-users.acl"}
    worker = layout.read(layout.redis_password("worker"))
    assert hashlib.sha256(worker.encode()).hexdigest() in layout.redis_acl.read_text()
    # Same key, new certificate, still from the same CA.
    assert before["redis.key"] == after["redis.key"]
    assert before["ca.key"] == after["ca.key"]
    # Another prefix: the ACL file follows it, nothing else changes.
    generate(tmp_path / "secrets", "other")
    assert "~other*" in layout.redis_acl.read_text() and "~dm*" not in layout.redis_acl.read_text()
    assert layout.read(layout.redis_password("worker")) == worker


def test_a_web_password_change_rehashes(tmp_path: Path) -> None:
    layout = generate(tmp_path / "secrets", "dm")
    layout.web_password.unlink()
    generate(tmp_path / "secrets", "dm")
    hashed = yaml.safe_load(layout.prometheus_web_config.read_text())["basic_auth_users"]
    assert bcrypt.checkpw(layout.read(layout.web_password).encode(), hashed["demandmon"].encode())


def test_a_folder_others_can_open_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "secrets"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)  # the test's own setup, whatever the umask
    with pytest.raises(SecretsError, match="others may open it"):
        generate(folder, "dm")


def test_a_secret_file_others_can_read_is_refused(tmp_path: Path) -> None:
    layout = generate(tmp_path / "secrets", "dm")
    os.chmod(layout.kafka_password("admin"), 0o644)  # as if someone widened it
    with pytest.raises(SecretsError, match="others may read it"):
        generate(tmp_path / "secrets", "dm")


def test_a_certificate_without_its_key_is_refused(tmp_path: Path) -> None:
    layout = generate(tmp_path / "secrets", "dm")
    layout.key("web").unlink()
    with pytest.raises(SecretsError, match="exists without its key"):
        generate(tmp_path / "secrets", "dm")


def test_bad_prefix_and_unknown_certificate(tmp_path: Path) -> None:
    with pytest.raises(SecretsError, match="key prefix"):
        generate(tmp_path / "a", "dm*")
    with pytest.raises(SecretsError, match="unknown certificate"):
        generate(tmp_path / "b", "dm", {"grafana": ["grafana"]})
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# `demandmon secrets init DIR` -----------------------------------------------------------
def test_cli_init_lists_files_and_prints_no_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "compose-secrets"
    assert main(["init", str(folder), "--service-name", "web=worker,exporter,demo"]) == 0
    out = capsys.readouterr().out
    layout = SecretsLayout.at(folder)
    for path in layout.secret_files():
        assert path.name in out
        if path.suffix in (".password", ".token"):
            assert layout.read(path) not in out
    sans = _cert(layout.cert("web")).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert "demo" in sans.value.get_values_for_type(x509.DNSName)


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["init"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["init", str(tmp_path / "x"), "--service-name", "nope=x"])
    assert exc.value.code == 2
    capsys.readouterr()
    open_folder = tmp_path / "open"
    open_folder.mkdir()
    os.chmod(open_folder, 0o755)
    assert main(["init", str(open_folder)]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("demandmon secrets: ") and "others may open it" in line


# The secure stack's files, rendered without starting it -------------------------------------
def _secure_state(tmp_path: Path) -> tuple[StackLayout, StackState]:
    layout = StackLayout(tmp_path, "sec")
    generate(layout.secrets_dir, "dm")
    ports = {name: 20000 + i for i, name in enumerate(PORT_NAMES)}
    state = StackState(
        name="sec",
        ports=ports,
        kafka_cluster_id="x",
        secure=True,
        secrets_dir=str(layout.secrets_dir),
    )
    return layout, state


def test_state_endpoints_and_role_files_are_0600_and_hold_no_secret(
    tmp_path: Path, no_chmod: None
) -> None:
    layout, state = _secure_state(tmp_path)
    layout.save(state)
    s = state.secrets()
    assert _mode(layout.roles_dir) == 0o700
    for path in (layout.state_file, layout.env_file, *map(layout.role_file, ROLES)):
        assert _mode(path) == 0o600, path
    written = "".join(
        p.read_text() for p in (layout.state_file, layout.env_file, *layout.roles_dir.iterdir())
    )
    for path in s.secret_files():
        if path.suffix in (".password", ".token"):
            assert s.read(path) not in written
    env = state.endpoints()
    assert env["DEMANDMON_REDIS_URL"] == "rediss://127.0.0.1:20002/0"
    assert env["DEMANDMON_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["DEMANDMON_PROMETHEUS_URL"].startswith("https://")
    assert env["DEMANDMON_PROMETHEUS_PASSWORD_FILE"] == str(s.web_password)
    assert env["DEMANDMON_ALERTS_TOKEN_FILE"] == str(s.alerts_token)
    assert state.role_env("worker") == {
        "DEMANDMON_KAFKA_USERNAME": "worker",
        "DEMANDMON_KAFKA_PASSWORD_FILE": str(s.kafka_password("worker")),
        "DEMANDMON_REDIS_USERNAME": "worker",
        "DEMANDMON_REDIS_PASSWORD_FILE": str(s.redis_password("worker")),
    }
    assert "DEMANDMON_KAFKA_USERNAME" not in state.role_env("reader")  # no Kafka user
    assert layout.role_file("reader").read_text() == (
        "DEMANDMON_REDIS_USERNAME=reader\n"
        f"DEMANDMON_REDIS_PASSWORD_FILE={s.redis_password('reader')}\n"
    )
    assert state.env("replay") == {**env, **state.role_env("replay")}


def test_a_plain_stack_writes_its_files_0600_too(tmp_path: Path, no_chmod: None) -> None:
    layout = StackLayout(tmp_path, "plain")
    ports = {"kafka": 1, "redis": 1, "prometheus": 2, "alertmanager": 3, "worker": 4, "exporter": 5}
    state = StackState(name="plain", ports=ports, redis_password="pw")
    layout.save(state)
    assert _mode(layout.state_file) == 0o600 and _mode(layout.env_file) == 0o600
    assert "redis://:pw@127.0.0.1:1/0" in layout.env_file.read_text()
    assert not layout.roles_dir.exists() and state.role_env("worker") == {}
    layout.save(state)  # replaced, still 0600
    assert _mode(layout.state_file) == 0o600


def test_secure_kafka_redis_and_prometheus_configuration(tmp_path: Path) -> None:
    layout, state = _secure_state(tmp_path)
    s = state.secrets()
    props = dict(
        line.split("=", 1) for line in kafka_properties(layout, state).splitlines() if line
    )
    assert props["listeners"] == "SASL_SSL://127.0.0.1:20000,CONTROLLER://127.0.0.1:20001"
    assert props["listener.security.protocol.map"] == "CONTROLLER:SSL,SASL_SSL:SASL_SSL"
    assert props["inter.broker.listener.name"] == "SASL_SSL"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["listener.name.controller.ssl.client.auth"] == "required"
    assert props["listener.name.sasl_ssl.ssl.keystore.type"] == "PEM"
    assert props["authorizer.class.name"].endswith("StandardAuthorizer")
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == "User:admin;User:kafka-controller"
    assert "PLAINTEXT" not in props["listeners"]
    argfile = secure.kafka_format_argfile(state, tmp_path / "p")
    for user in KAFKA_USERS:
        assert f'"SCRAM-SHA-512=[name={user},password={s.read(s.kafka_password(user))}]"' in argfile
    conf = redis_conf(layout, state).splitlines()
    assert "port 0" in conf and "tls-port 20002" in conf and f"aclfile {s.redis_acl}" in conf
    assert not any(line.startswith("requirepass") for line in conf)
    prom = yaml.safe_load(secure.prometheus_config(state, "/rules"))
    for job in prom["scrape_configs"]:
        assert job["scheme"] == "https" and job["tls_config"] == {"ca_file": str(s.ca_cert)}
        assert job["basic_auth"]["password_file"] in (str(s.metrics_password), str(s.web_password))
    [am] = prom["alerting"]["alertmanagers"]
    assert am["scheme"] == "https" and am["basic_auth"]["username"] == "demandmon"
    rendered = "receivers:\n- name: r\n  webhook_configs:\n  - url: https://127.0.0.1:1/alerts\n"
    hook = yaml.safe_load(secure.alertmanager_config(state, rendered))["receivers"][0]
    assert hook["webhook_configs"][0]["http_config"] == {
        "authorization": {"type": "Bearer", "credentials_file": str(s.alerts_token)},
        "tls_config": {"ca_file": str(s.ca_cert)},
    }


def test_an_existing_plain_stack_is_not_turned_secure(tmp_path: Path) -> None:
    plain = StackLayout(tmp_path, "plain")
    plain.save(control._new_state(plain, {}, "5s", ""))  # exists; nothing runs
    with pytest.raises(StackError, match="exists and is not secure"):
        control.up(tmp_path, "plain", secure=True)
    assert not plain.secrets_dir.exists()


# Architecture ------------------------------------------------------------------------
@pytest.mark.parametrize("package", ["secrets", "stack"])
def test_deploy_packages_import_nothing_from_the_product(package: str) -> None:
    files = sorted((ROOT / "deploy" / package).glob("*.py"))
    assert files
    for path in files:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules = [node.module]
            else:
                continue
            for module in modules:
                assert module.split(".")[0] not in PRODUCT, f"{path.name} imports {module}"
