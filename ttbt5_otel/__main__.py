"""``python -m ttbt5_otel``: the ``ttbt5-otel`` command."""

from ttbt5_otel._cli.main import main

raise SystemExit(main())
