"""`demandmon secrets init DIR`: make the certificates, passwords and authentication files
of a secure deployment (docker-compose, or any host) in the folder DIR.

DIR is created with mode 0700 and each secret in it with mode 0600; certificates are
0644. Existing files are kept, so running it again only fills in what is missing (remove
DIR, or one file, to remake it). Nothing secret is printed: only the file names.

What DIR holds (see docs/security.md):
  ca.pem, ca.key                    the private CA
  <service>.pem, <service>.key      kafka, kafka-controller, redis, prometheus,
                                    alertmanager, web (the worker's and exporter's HTTPS);
                                    each valid for 127.0.0.1, localhost and its compose
                                    service name(s)
  kafka-keystore.pem, kafka-controller-keystore.pem
                                    key + certificate chain for Kafka (ssl.keystore.type=PEM)
  kafka-<user>.password             SCRAM-SHA-512 users admin, worker, replay
  redis-<user>.password             Redis ACL users admin, worker, replay, exporter, reader
  redis-users.acl                   the Redis aclfile (default user off, hashed passwords)
  metrics.password                  basic auth on /metrics (user prometheus)
  alerts.token                      the bearer token the exporter's /alerts requires
  web.password                      basic auth on Prometheus and Alertmanager (user demandmon)
  prometheus-web.yml, alertmanager-web.yml
                                    their --web.config.file (TLS + bcrypt basic auth)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from deploy.secrets.files import SecretsError
from deploy.secrets.folder import SERVICE_NAMES, generate


class _Parser(argparse.ArgumentParser):
    """As every `demandmon` command: a wrong flag is one line on stderr, exit code 2."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def _service_name(text: str) -> tuple[str, list[str]]:
    service, sep, names = text.partition("=")
    if not sep or service not in SERVICE_NAMES or not names:
        raise argparse.ArgumentTypeError(
            f"expected SERVICE=NAME[,NAME...] with SERVICE one of {', '.join(SERVICE_NAMES)}"
        )
    return service, [n for n in names.split(",") if n]


def _parser() -> _Parser:
    parser = _Parser(
        prog="demandmon secrets",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="action", required=True, metavar="init")
    init = sub.add_parser(
        "init",
        help="make (or complete) a secrets folder",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    init.add_argument("dir", type=Path, metavar="DIR", help="the secrets folder (made 0700)")
    init.add_argument(
        "--key-prefix",
        default="dm",
        help="the Redis key prefix the ACL users are confined to (default: dm)",
    )
    init.add_argument(
        "--service-name",
        action="append",
        type=_service_name,
        default=[],
        metavar="SERVICE=NAME[,NAME]",
        help="host names a certificate is valid for besides 127.0.0.1 and localhost "
        "(default: the docker-compose service names; repeatable)",
    )
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        layout = generate(args.dir, args.key_prefix, dict(args.service_name))
    except (SecretsError, OSError) as exc:
        print(f"demandmon secrets: {exc}", file=sys.stderr)
        return 1
    print(f"secrets in {layout.folder} (0700; secrets 0600, certificates 0644):")
    for path in sorted([*layout.public_files(), *layout.secret_files()]):
        print(f"  {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
