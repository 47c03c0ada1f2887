"""The benchmarks (``python -m core.bench``): one home, outside the domain packages. They
use the domain; nothing in the domain imports them."""
