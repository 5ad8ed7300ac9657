"""Data: loading sources (Hub, AG News folders, CSV/Parquet), stratified sampling, data
profiles and plots, and the token ids tokenize writes for train."""
