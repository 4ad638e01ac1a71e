"""The generator's model code (MLflow "models from code"): no pickled object in the model.

``mlflow.pyfunc.log_model(python_model=<this file>)`` copies this file into the logged model;
loading it runs it, and it names the model class. The package itself travels in the model's
``code/`` folder, so ``aelatent`` imports where it is not installed.
"""

import mlflow

from aelatent.serving.generator_model import GeneratorModel

mlflow.models.set_model(GeneratorModel())
