"""Studies built on the core's training path: summarization (HashEE on a seq2seq encoder) and
the difficulty-learnability study."""
