"""``python -m cli``: the same as the ``km-search`` console script."""
from .main import main

main()
