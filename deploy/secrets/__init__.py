"""Certificates and secrets for a secure deployment (docs/security.md).

``generate(folder, key_prefix, service_names) -> SecretsLayout`` makes a private CA, one
certificate per service, a password per Kafka and Redis user, the metrics password, the
alerts token, the Prometheus/Alertmanager basic-auth password, the Redis ACL file and the
Prometheus/Alertmanager web configurations, all in ``folder`` (mode 0700, secrets 0600).
``deploy.secrets.cli.main(argv)`` is `demandmon secrets init DIR`.

Like deploy/stack, this imports nothing from the product (demandmon, agents, streams,
schemas): only the standard library, cryptography, bcrypt, PyYAML and deploy.* modules.
"""

from deploy.secrets.files import SecretsError
from deploy.secrets.folder import (
    KAFKA_USERS,
    METRICS_USER,
    REDIS_USERS,
    SERVICE_NAMES,
    WEB_USER,
    SecretsLayout,
    generate,
)

__all__ = [
    "KAFKA_USERS",
    "METRICS_USER",
    "REDIS_USERS",
    "SERVICE_NAMES",
    "WEB_USER",
    "SecretsError",
    "SecretsLayout",
    "generate",
]
