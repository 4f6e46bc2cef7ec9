import os

# Tests run on CPU with float32, as CI does; keep XLA from grabbing every core's worth of threads twice.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")
