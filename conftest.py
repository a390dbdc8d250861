"""Root of the test suite.

pytest's importlib mode names a test module after its path (``chassis/tests/test_db.py`` →
``chassis.tests.test_db``) and would create a placeholder ``chassis`` package from the
folder, shadowing the installed one. Importing the real packages first prevents that.
"""

import chassis
import console
import contracts
import mesh

__all__ = ["chassis", "console", "contracts", "mesh"]
