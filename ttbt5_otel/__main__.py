"""``python -m ttbt5_otel``: the ``ttbt5-otel`` command."""

from ttbt5_otel._cli import main

raise SystemExit(main())
