"""``python -m infra create|delete|migrate-state|audit``: provision or remove everything, rewrite
pickled states as snapshots (:mod:`infra.migrate_state`), or hold a component's recorded AWS
calls against its policy (:mod:`infra.call_log`)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

from adapters import aws
from core.config import Settings
from infra import call_log
from infra.migrate_state import StateMigration
from infra.policies import LAMBDA_SERVICE_SIDS, POLICIES
from infra.provision import Provisioner


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m infra", description=__doc__)
    parser.add_argument("action", choices=["create", "delete", "migrate-state", "audit"])
    parser.add_argument("--no-iam", action="store_true", help="skip IAM (for accounts where you may not manage it)")
    parser.add_argument("--users", action="store_true",
                        help="also create an IAM user and access key per component, stored as AWS profiles")
    parser.add_argument("--credentials-file", type=Path, default=None,
                        help="shared-credentials file for --users (default: TRAFFIC_HOME/credentials, mode 0600)")
    parser.add_argument("--dry-run", action="store_true", help="migrate-state: read and convert, write nothing")
    parser.add_argument("--call-log", type=Path, help="audit: a file written with TRAFFIC_AWS_CALL_LOG (infra/call_log.py)")
    parser.add_argument("--component", choices=[*POLICIES, "lambda"], help="audit: whose policy to hold it against")
    return parser


@aws.stops_on_permanent("infra")
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    if args.action == "migrate-state":
        s3, dynamodb = aws.clients(settings, "s3", "dynamodb")
        migration = StateMigration(dynamodb, s3, settings.checkpoint_table, settings.bucket, settings.app_name)
        report = migration.run(dry_run=args.dry_run)
        print(json.dumps(dataclasses.asdict(report), indent=2))
        return 1 if report.failed else 0
    provisioner = Provisioner(settings)
    if args.action == "audit":
        if args.call_log is None or args.component is None:
            parser.error("audit needs --call-log and --component")
        document, service_sids = provisioner.policy_document(args.component), ()
        if args.component == "lambda":
            service_sids = LAMBDA_SERVICE_SIDS  # Lambda's own calls for the mapping: not in a handler's log
        result = call_log.audit(call_log.read(args.call_log), document, service_sids)
        print(result.table())
        return 0 if result.exact else 1
    if args.action == "create":
        created = provisioner.create(with_iam=not args.no_iam)
        if args.users:
            path = args.credentials_file or settings.home / "credentials"
            created["profiles"] = provisioner.create_users(path)
            created["credentials_file"] = str(path)
        print(json.dumps(created, indent=2))
    else:
        provisioner.delete()
        print("deleted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
