"""TurkishMMLU: the subject table, the data (local copy or Hub) and the lm-eval hooks."""
