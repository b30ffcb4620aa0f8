"""fraudkit: find fraud in medical-insurance claims and decide where flight inspections go."""

__version__ = "0.1.0"

from fraudkit.io import Batch, BatchError, load_batch, load_labels, write_batch  # noqa: E402

__all__ = ["Batch", "BatchError", "__version__", "load_batch", "load_labels", "write_batch"]
