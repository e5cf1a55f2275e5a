"""LocalStack without Docker: ``python3 localstack/native.py install|start|stop|status`` (infra/localstack_native.py).

This folder is not a Python package (no ``__init__.py``), so it never hides the ``localstack``
package that LocalStack's own virtualenv imports; this script only puts the repo on ``sys.path``
to reach :mod:`infra.localstack_native`.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.localstack_native import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
