"""Entry point of the logged pyfunc model ("models from code": MLflow runs this file, it unpickles nothing)."""

import mlflow

from fraudkit.tracking._pyfunc import FraudkitPyfunc

mlflow.models.set_model(FraudkitPyfunc())
