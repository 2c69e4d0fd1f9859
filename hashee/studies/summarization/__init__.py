"""Summarization with HashEE on seq2seq models: data, ROUGE, models, cost and the results table."""
