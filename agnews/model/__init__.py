"""The model: loading the pretrained weights and tokenizer, batching and scoring, device and
precision (measured on CPUs), and the model as MLflow logs and loads it."""
