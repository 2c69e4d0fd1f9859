"""Static models: a backbone truncated to its first n layers, fine-tuned normally.

BERT-nL, ElasticBERT-nL (n = 1..12 is also the ELUE reference curve), RoBERTa-3L, ALBERT-3L, and
the offline default's truncations of MiniLM. Every token runs every layer it has.
"""

from hashee.core.methods import Method, register


@register
class Static(Method):
    name = "static"
    description = "Static model: the backbone truncated to its first n layers, fine-tuned normally (the ELUE reference curve)"
    supports_regression = True  # the plain classifier/regressor head
    setting_defaults = {"layers": ""}

    def predict_outputs(self, model, batch, inference):
        return model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])[0]
