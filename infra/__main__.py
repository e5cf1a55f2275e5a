"""``python -m infra create|delete``: provision or remove everything, idempotently."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from core.config import Settings
from infra.provision import Provisioner


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m infra", description=__doc__)
    parser.add_argument("action", choices=["create", "delete"])
    parser.add_argument("--no-iam", action="store_true", help="skip IAM (for accounts where you may not manage it)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    provisioner = Provisioner(Settings.from_env())
    if args.action == "create":
        print(json.dumps(provisioner.create(with_iam=not args.no_iam), indent=2))
    else:
        provisioner.delete()
        print("deleted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
