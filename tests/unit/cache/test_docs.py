"""The caching guide's example runs as written."""

import re
import subprocess
import sys

from tests.loopback import clean_env
from tests.paths import REPO as ROOT


def test_caching_guide_example_runs():
    [example] = re.findall(
        r"```python\n(.*?)```", (ROOT / "docs" / "caching.md").read_text(), flags=re.DOTALL
    )
    env = clean_env()
    proc = subprocess.run(
        [sys.executable, "-c", example],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["{'id': 1, 'name': 'product 1'} loads: 1", "loads: 2"]
    assert "ttbt5.cache.coalesced{cache.name=products} 49" in proc.stderr
    assert "cache.result=hit" in proc.stderr
