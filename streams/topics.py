"""`demandmon topics`: create the incident event topic and its dead-letter topic (or
raise a too-short retention), and on a secured Kafka grant the worker's and replay's
ACLs. The topics themselves are specified in ``demandmon.kafka_topics``, which the worker
and replay share."""

from __future__ import annotations

import sys

from kafka.errors import KafkaError

from demandmon.arguments import CommandParser
from demandmon.clients import KafkaUnavailable, kafka_failure, kafka_secured
from demandmon.kafka_acls import acl_grants
from demandmon.kafka_topics import ensure_topics, topic_specs
from demandmon.settings import settings_or_exit


def main(argv: list[str]) -> int:
    parser = CommandParser(prog="demandmon topics", description=__doc__)
    parser.parse_args(argv)
    settings = settings_or_exit("demandmon topics", "admin")
    try:
        report = ensure_topics(settings, wait_s=30)
    except KafkaUnavailable as exc:
        print(f"demandmon topics: {exc}", file=sys.stderr)
        return 1
    except KafkaError as exc:
        print(f"demandmon topics: {kafka_failure(settings, exc).line}", file=sys.stderr)
        return 1
    for spec in topic_specs(settings):
        print(report.describe(spec))
    if kafka_secured(settings):
        granted = len(report.acls_granted)
        print(f"ACLs: {granted} granted, {len(acl_grants(settings)) - granted} already in place")
        for grant in report.acls_granted:
            print(f"  granted {grant}")
    for warning in report.warnings:
        print(f"demandmon topics: warning: {warning}", file=sys.stderr)
    return 0
