"""The model's code, as MLflow logs a model from code: it runs when the model loads and hands
MLflow the classifier of `agnews.model.served`. Only `mlflow.pyfunc` runs it; importing it
elsewhere would set MLflow's current model for nothing."""
import mlflow

from agnews.model.served import TextClassifier

mlflow.models.set_model(TextClassifier())
