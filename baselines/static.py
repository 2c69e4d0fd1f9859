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
    table_order = 0
    is_reference = True  # the ELUE reference curve; the plots draw it as one black line
    paper_rows = (("bert", "layers=3", "BERT-3L"), ("elasticbert", "layers=3", "ElasticBERT-3L"),
                  ("albert", "layers=3", "ALBERT-3L"), ("roberta", "layers=3", "RoBERTa-3L"),
                  ("distilbert", "", "DistilBERT"))

    def predict_outputs(self, model, batch, inference):
        return model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])[0]
