"""`python -m srpose_fast.cli ...` (what torchrun runs): the same as `srpose-fast ...`."""
import sys

from . import main

sys.exit(main())
